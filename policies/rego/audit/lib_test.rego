package camblet.audit.lib_test

import data.camblet.audit
import data.camblet.audit.lib
import rego.v1

open_input(path, flags) := {
	"syscall": "openat", "ret": 3, "path": path, "flags": flags, "argv": [],
	"proc": {"pid": 2, "name": "vi", "exe": "/usr/bin/vi", "uid": 0},
	"ancestors": [{"pid": 1, "name": "bash", "exe": "/usr/bin/bash"}],
	"container": {"id": "", "labels": {}},
}

test_flags_named if {
	f := lib.flags with input as {"flags": 577} # O_WRONLY|O_CREAT|O_TRUNC
	f.write
	not f.read
	f.create
	f.trunc
	not f.append
}

test_read_only_is_not_write if {
	not lib.open_write with input as open_input("/etc/passwd", 0)
	lib.open_read with input as open_input("/etc/passwd", 0)
}

test_under_prefix if {
	lib.under("/etc/pam.d/sshd", ["/usr/", "/etc/pam.d/"])
	not lib.under("/etc/pam.conf.d", ["/etc/pam.d/"])
}

test_spawned_by_any_ancestor if {
	lib.spawned_by("bash") with input as open_input("/x", 0)
	not lib.spawned_by("sshd") with input as open_input("/x", 0)
}

test_in_container if {
	lib.in_container with input as {"container": {"id": "abc"}}
	not lib.in_container with input as {"container": {"id": ""}}
}

test_write_below_etc_fires_once if {
	vs := audit.violations with input as open_input("/etc/hosts", 1)
	[v | some v in vs; v.rule == "Write below etc"] != []
	count(vs) == 1
}

test_package_manager_may_write_etc if {
	i := object.union(open_input("/etc/hosts", 1), {"proc": {"pid": 2, "name": "dpkg", "exe": "/usr/bin/dpkg", "uid": 0}})
	count(audit.violations) == 0 with input as i
}

test_every_filter_declaration_names_a_rule_and_syscalls if {
	count(audit.filter) >= 15
	every d in audit.filter {
		is_string(d.rule)
		count(d.syscalls) > 0
	}
}

test_line_joins_strings_and_integers_like_sprintf if {
	lib.line(["ret ", -13, " pid ", 40, " ok"]) == sprintf("ret %d pid %d ok", [-13, 40])
	lib.line(["mode=", lib.oct(2541)]) == sprintf("mode=%o", [2541])
	lib.line(["x ", null, " ", 1.5, " ", ["a"]]) == sprintf("x %v %v %v", [null, 1.5, ["a"]])
}

test_proc_desc_is_the_sprintf_line if {
	inp := {"proc": {"name": "sh", "pid": 7, "exe": "/bin/sh", "uid": 0}, "ancestors": [{"name": "bash"}], "container": {"id": "c1"}}
	lib.proc_desc == "sh (pid 7, exe /bin/sh, parent bash, uid 0, container c1)" with input as inp
}

test_pod_helpers if {
	lib.in_pod with input as {"pod": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}}}
	lib.pod_label("app") == "web" with input as {"pod": {"name": "web-0", "labels": {"app": "web"}}}
	not lib.in_pod with input as {"pod": null}
	not lib.in_pod with input as {}
}
