# Helpers for syscall audit rules (camblet-agent issue 14), so rules read like Falco's.
# The input is one captured syscall with its process context; see agent/audit/context.ts.
package camblet.audit.lib

import rego.v1

open_syscalls := {"open", "openat", "openat2"}

exec_syscalls := {"execve", "execveat"}

shell_binaries := {"sh", "bash", "dash", "zsh", "ksh", "fish", "ash", "csh", "tcsh"}

package_managers := {"apt", "apt-get", "aptitude", "dpkg", "yum", "dnf", "rpm", "apk", "pip", "pip3", "npm"}

package_manager_procs := package_managers | {"dpkg-preconfigu", "unattended-upgr"}

# open(2) flags as named booleans (x86_64 values). The agent sends them decoded as
# input.open_flags: five bits.and on wasm's big numbers cost more than the rest of an open's rules.
flags := input.open_flags if input.open_flags

else := {
	"read": bits.and(input.flags, 3) != 1,
	"write": bits.and(input.flags, 3) != 0,
	"create": bits.and(input.flags, 64) != 0,
	"trunc": bits.and(input.flags, 512) != 0,
	"append": bits.and(input.flags, 1024) != 0,
}

succeeded if input.ret >= 0

# Syscall tests as equalities, not `in` a set: the wasm builds a set literal in every evaluation
# (hashing each member), and these run for every event (~5-10 % of an open's evaluation).
is_open if input.syscall == "openat"

is_open if input.syscall == "open"

is_open if input.syscall == "openat2"

# Opened for reading (attempts count too: a denied read of /etc/shadow is still interesting).
open_read if {
	is_open
	flags.read
}

open_write if {
	is_open
	flags.write
}

spawned_process if {
	input.ret == 0
	is_exec
}

is_exec if input.syscall == "execve"

is_exec if input.syscall == "execveat"

in_container if input.container.id != ""

# In a Kubernetes pod (input.pod is null elsewhere).
in_pod if input.pod.name != ""

# A label of the pod (from the kubelet attestor), undefined when it has none.
pod_label(k) := input.pod.labels[k]

# True when any ancestor (parent first) has this name.
spawned_by(name) if {
	some a in input.ancestors
	a.name == name
}

default parent_name := ""

parent_name := input.ancestors[0].name

# True when path p equals one of the prefixes or lies below one ending in "/".
under(p, prefixes) if {
	some pre in prefixes
	startswith(p, pre)
}

basename(p) := b if {
	parts := split(p, "/")
	b := parts[count(parts) - 1]
}

has_arg(a) if {
	some x in input.argv
	x == a
}

# A violation object: the agent adds time, event, process tree, labels and SPIFFE ID.
violation(rule, severity, output) := {"rule": rule, "severity": severity, "output": output}

# Output lines are joined with concat and format_int, which the wasm runs natively: sprintf is a
# call out to opa-wasm's JavaScript (every argument a JSON round trip), and with two per violation
# it was ~60 % of a violating event's evaluation. line(parts) joins strings and integers in
# order; anything else is written as sprintf's %v would.
line(parts) := concat("", [str(x) | some x in parts])

str(x) := x if is_string(x)

else := format_int(x, 10) if {
	is_number(x)
	x == floor(x)
}

else := sprintf("%v", [x])

# An integer in octal (file modes), as sprintf's %o.
oct(x) := format_int(x, 8) if x == floor(x)

else := sprintf("%v", [x])

# Every violation's line has it: joined directly (str only for the numbers), ~1 µs less than line.
proc_desc := concat("", [
	input.proc.name, " (pid ", str(input.proc.pid), ", exe ", input.proc.exe, ", parent ", parent_name,
	", uid ", str(input.proc.uid), ", container ", object.get(input, ["container", "id"], ""), ")",
])
