package camblet.issuance_test

import rego.v1

import data.camblet.issuance

base := {
	"spiffe_id": "spiffe://acme.test/web",
	"trust_domain": "acme.test",
	"dns_names": [],
	"ttl_seconds": 3600,
	"task": {"uid": 1000, "gid": 1000, "pid": 42, "command_name": "python3"},
	"labels": ["process:name=python3"],
}

reserved := {"system/": [0]}

test_allows_ordinary_request if {
	issuance.decision.allow with input as base with data.max_ttl_seconds as 86400
}

test_denies_long_ttl if {
	d := issuance.decision with input as object.union(base, {"ttl_seconds": 172800})
		with data.max_ttl_seconds as 86400
	not d.allow
	d.reasons == ["ttl 172800s is above the issuance maximum of 86400s"]
}

test_reserved_path_needs_listed_uid if {
	req := object.union(base, {"spiffe_id": "spiffe://acme.test/system/dns"})
	d := issuance.decision with input as req with data.reserved_paths as reserved
	not d.allow
	root := object.union(req, {"task": {"uid": 0}})
	issuance.decision.allow with input as root with data.reserved_paths as reserved
}

test_internal_dns_needs_label if {
	req := object.union(base, {"dns_names": ["db.internal"]})
	not issuance.decision.allow with input as req
	labelled := object.union(req, {"labels": ["camblet:allow-internal-dns=true"]})
	issuance.decision.allow with input as labelled
}
