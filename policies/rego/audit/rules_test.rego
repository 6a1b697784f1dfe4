package camblet.audit.rules_test

import data.camblet.audit
import rego.v1

connect_input(policy, port, ret) := {
	"syscall": "connect", "ret": ret, "path": "", "argv": [],
	"addr": {"family": 2, "ip": "10.0.0.7", "port": port},
	"proc": {"pid": 7, "name": "curl", "exe": "/usr/bin/curl", "uid": 1000},
	"ancestors": [{"pid": 6, "name": "bash", "exe": "/usr/bin/bash"}],
	"container": {"id": "", "labels": {}},
	"labels": ["process:name=curl"],
	"workload": {"egress_policy": policy},
}

egress_rules(inp) := {v.rule | some v in audit.violations with input as inp; v.rule == "Outbound connection without egress policy"}

test_egress_fires_when_the_workload_has_no_egress_policy if {
	count(egress_rules(connect_input(false, 443, 0))) == 1
	count(egress_rules(connect_input(false, 443, -115))) == 1 # non-blocking, in progress
	some v in audit.violations with input as connect_input(false, 443, 0)
	v.severity == "notice"
	contains(v.output, "dest=10.0.0.7:443")
	contains(v.output, "labels=process:name=curl")
}

test_egress_silent_with_a_policy_unknown_or_no_connection if {
	count(egress_rules(connect_input(true, 443, 0))) == 0
	count(egress_rules(connect_input(null, 443, 0))) == 0
	count(egress_rules(object.remove(connect_input(false, 443, 0), ["workload"]))) == 0
	count(egress_rules(connect_input(false, 443, -111))) == 0 # refused
	count(egress_rules(connect_input(false, 53, 0))) == 0 # a name lookup
}

test_container_rules_are_scoped_to_containers if {
	some d in audit.filter
	d.rule == "Terminal shell in container"
	d.containers == true
	some p in audit.filter
	p.rule == "Launch Package Management Process in Container"
	p.containers == true
}
