# Issuance policy: decides, before the identity manager signs, whether a workload certificate may
# be issued. Compiled to wasm with `opa build -t wasm -e camblet/issuance/decision`.
#
# input: {spiffe_id, trust_domain, dns_names, ttl_seconds, task: {uid, gid, pid, command_name,
#         command_path, cgroup_path}, labels: ["k=v", ...], policy: {id, workloadID, ...}}
# data:  {max_ttl_seconds, reserved_paths: {"<path prefix>": [<uid>, ...]}}
package camblet.issuance

import rego.v1

default max_ttl_seconds := 86400

max_ttl_seconds := data.max_ttl_seconds

# SPIFFE ID path below the trust domain.
path := trim_prefix(input.spiffe_id, concat("", ["spiffe://", input.trust_domain, "/"]))

deny contains msg if {
	input.ttl_seconds > max_ttl_seconds
	msg := concat("", ["ttl ", format_int(input.ttl_seconds, 10), "s is above the issuance maximum of ", format_int(max_ttl_seconds, 10), "s"])
}

# Reserved paths may only be requested by the listed uids.
deny contains msg if {
	some prefix, uids in data.reserved_paths
	startswith(path, prefix)
	not input.task.uid in uids
	msg := concat("", ["path \"", path, "\" is reserved for uids ", concat(",", [format_int(u, 10) | some u in uids]), ", requested by uid ", format_int(input.task.uid, 10)])
}

deny contains msg if {
	some name in input.dns_names
	endswith(name, ".internal")
	not "camblet:allow-internal-dns=true" in input.labels
	msg := concat("", ["DNS name \"", name, "\" needs label camblet:allow-internal-dns=true"])
}

decision := {"allow": count(deny) == 0, "reasons": sort(deny)}
