# Default syscall audit rules, translated from Falco's default rule set (falco_rules.yaml).
# Each rule adds a violation (rule, severity, output) and declares in `filter` which syscalls
# (and, for path syscalls, which path prefixes; for opens, whether only writes; optionally only
# containers or only workloads with given labels) it can match: the agent compiles each declaration into the in-kernel
# prefilter, so nothing no rule can match leaves the kernel.
package camblet.audit

import data.camblet.audit.lib
import rego.v1

exec_calls := ["execve", "execveat"]

open_calls := ["open", "openat", "openat2"]

# --- Terminal shell in container ------------------------------------------------------------
filter contains {"rule": "Terminal shell in container", "syscalls": exec_calls, "containers": true}

violations contains lib.violation("Terminal shell in container", "notice", lib.line([
	"A shell was spawned in a container (", lib.proc_desc, " cmdline=", concat(" ", input.argv), ")",
])) if {
	lib.spawned_process
	lib.in_container
	input.proc.name in lib.shell_binaries
}

# --- Package management process launched in container ------------------------------------------
filter contains {"rule": "Launch Package Management Process in Container", "syscalls": exec_calls, "containers": true}

violations contains lib.violation("Launch Package Management Process in Container", "error", lib.line([
	"Package management process launched in container (", lib.proc_desc, " cmdline=", concat(" ", input.argv), ")",
])) if {
	lib.spawned_process
	lib.in_container
	input.proc.name in lib.package_managers
}

# --- Read sensitive file untrusted --------------------------------------------------------------
sensitive_files := ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/pam.conf", "/etc/pam.d/", "/etc/sudoers.d/"]

sensitive_readers := {"sshd", "sudo", "su", "login", "passwd", "chpasswd", "unix_chkpwd", "systemd", "systemd-logind", "cron"}

filter contains {"rule": "Read sensitive file untrusted", "syscalls": open_calls, "prefixes": sensitive_files}

violations contains lib.violation("Read sensitive file untrusted", "warning", lib.line([
	"Sensitive file opened for reading by non-trusted program (file=", input.path, " ", lib.proc_desc, ")",
])) if {
	lib.open_read
	lib.under(input.path, sensitive_files)
	not input.proc.name in sensitive_readers
}

# --- Write below etc ----------------------------------------------------------------------------
filter contains {"rule": "Write below etc", "syscalls": open_calls, "prefixes": ["/etc/"], "writes": true}

violations contains lib.violation("Write below etc", "error", lib.line([
	"File below /etc opened for writing (file=", input.path, " ", lib.proc_desc, ")",
])) if {
	lib.open_write
	startswith(input.path, "/etc/")
	not input.proc.name in lib.package_manager_procs
}

# --- Write below binary dir ---------------------------------------------------------------------
bin_dirs := ["/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/local/bin/"]

filter contains {"rule": "Write below binary dir", "syscalls": open_calls, "prefixes": bin_dirs, "writes": true}

violations contains lib.violation("Write below binary dir", "error", lib.line([
	"File below a known binary directory opened for writing (file=", input.path, " ", lib.proc_desc, ")",
])) if {
	lib.open_write
	lib.under(input.path, bin_dirs)
	not input.proc.name in lib.package_manager_procs
}

# --- Netcat remote code execution in container (here: anywhere) --------------------------------
netcat_names := {"nc", "ncat", "netcat"}

filter contains {"rule": "Netcat Remote Code Execution", "syscalls": exec_calls}

violations contains lib.violation("Netcat Remote Code Execution", "warning", lib.line([
	"Netcat runs inside a workload that allows remote code execution (", lib.proc_desc, " cmdline=", concat(" ", input.argv), ")",
])) if {
	lib.spawned_process
	input.proc.name in netcat_names
	some a in input.argv
	a in {"-e", "-c", "--sh-exec", "--exec", "--lua-exec"}
}

# --- PTRACE attached to process -----------------------------------------------------------------
# PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_POKETEXT/POKEDATA/POKEUSR.
ptrace_attach_requests := {16, 16902, 4, 5, 6}

filter contains {"rule": "PTRACE attached to process", "syscalls": ["ptrace"]}

violations contains lib.violation("PTRACE attached to process", "warning", lib.line([
	"Detected ptrace request ", input.ptrace.request, " on pid ", input.ptrace.pid, " (", lib.proc_desc, ")",
])) if {
	input.syscall == "ptrace"
	input.ptrace.request in ptrace_attach_requests
}

# --- Linux kernel module injection --------------------------------------------------------------
filter contains {"rule": "Linux Kernel Module Injection Detected", "syscalls": ["init_module", "finit_module"]}

violations contains lib.violation("Linux Kernel Module Injection Detected", "warning", lib.line([
	"Kernel module load attempted, result ", input.ret, " (", lib.proc_desc, " cmdline parent=", lib.parent_name, ")",
])) if {
	module_load
}

module_load if input.syscall == "init_module"

module_load if input.syscall == "finit_module"

# --- Set setuid or setgid bit -------------------------------------------------------------------
filter contains {"rule": "Set Setuid or Setgid bit", "syscalls": ["chmod", "fchmodat", "fchmod"]}

violations contains lib.violation("Set Setuid or Setgid bit", "notice", lib.line([
	"Setuid or setgid bit set (file=", input.path, " mode=", lib.oct(input.mode), " ", lib.proc_desc, ")",
])) if {
	chmod_call
	lib.succeeded
	bits.and(input.mode, 3072) != 0 # S_ISUID | S_ISGID
}

chmod_call if input.syscall == "chmod"

chmod_call if input.syscall == "fchmodat"

chmod_call if input.syscall == "fchmod"

# --- Fileless execution via memfd_create --------------------------------------------------------
filter contains {"rule": "Fileless execution via memfd_create", "syscalls": exec_calls}

violations contains lib.violation("Fileless execution via memfd_create", "critical", lib.line([
	"Program executed from a memfd, not from a file (exe=", input.exe_name, " ", lib.proc_desc, ")",
])) if {
	lib.spawned_process
	startswith(input.exe_name, "memfd:")
}

# --- Clear log activities -----------------------------------------------------------------------
filter contains {"rule": "Clear Log Activities", "syscalls": array.concat(open_calls, ["truncate"]), "prefixes": ["/var/log/"], "writes": true}

violations contains lib.violation("Clear Log Activities", "warning", lib.line([
	"Log file truncated (file=", input.path, " ", lib.proc_desc, ")",
])) if {
	startswith(input.path, "/var/log/")
	lib.succeeded
	clears_log
}

clears_log if {
	lib.open_write
	lib.flags.trunc
}

clears_log if input.syscall == "truncate"

# --- Modify shell configuration file ------------------------------------------------------------
shell_config_names := {".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zprofile", ".zlogin", ".cshrc", ".kshrc", "bash.bashrc", "profile"}

# The prefilter matches prefixes only: root's files by name, any file below /home/.
root_shell_configs := [sprintf("/root/%s", [n]) | some n in shell_config_names; startswith(n, ".")]

filter contains {"rule": "Modify Shell Configuration File", "syscalls": open_calls, "prefixes": array.concat(root_shell_configs, ["/home/", "/etc/profile", "/etc/bash.bashrc", "/etc/zsh/"]), "writes": true}

violations contains lib.violation("Modify Shell Configuration File", "warning", lib.line([
	"A shell configuration file was opened for writing (file=", input.path, " ", lib.proc_desc, ")",
])) if {
	lib.open_write
	lib.basename(input.path) in shell_config_names
	not input.proc.name in lib.package_manager_procs
}

# --- Search private keys or passwords -----------------------------------------------------------
filter contains {"rule": "Search Private Keys or Passwords", "syscalls": exec_calls}

violations contains lib.violation("Search Private Keys or Passwords", "warning", lib.line([
	"Grep or find searching for private keys or passwords (", lib.proc_desc, " cmdline=", concat(" ", input.argv), ")",
])) if {
	lib.spawned_process
	input.proc.name in {"find", "grep", "egrep", "rg"}
	some a in input.argv
	some needle in {"id_rsa", "id_dsa", "id_ed25519", "BEGIN PRIVATE", "BEGIN RSA PRIVATE", ".pem"}
	contains(a, needle)
}

# --- Detect outbound connections to common miner pool ports ------------------------------------
miner_ports := {3333, 4444, 5555, 6666, 7777, 8888, 9999, 14444, 14433, 45560, 45700}

filter contains {"rule": "Detect outbound connections to common miner pool ports", "syscalls": ["connect"]}

violations contains lib.violation("Detect outbound connections to common miner pool ports", "critical", lib.line([
	"Outbound connection to a common crypto-miner pool port (", input.addr.ip, ":", input.addr.port, " result ", input.ret, " ", lib.proc_desc, ")",
])) if {
	input.syscall == "connect"
	input.addr.family in {2, 10}
	input.addr.port in miner_ports
}

# --- Delete or rename shell history ------------------------------------------------------------
filter contains {"rule": "Delete or rename shell history", "syscalls": ["unlink", "unlinkat", "rename", "renameat", "renameat2"]}

violations contains lib.violation("Delete or rename shell history", "warning", lib.line([
	"Shell history deleted or renamed (file=", input.path, " ", lib.proc_desc, ")",
])) if {
	unlink_or_rename
	lib.succeeded
	endswith(input.path, "_history")
}

unlink_or_rename if input.syscall == "unlink"

unlink_or_rename if input.syscall == "unlinkat"

unlink_or_rename if input.syscall == "rename"

unlink_or_rename if input.syscall == "renameat"

unlink_or_rename if input.syscall == "renameat2"

# --- Mount of a file system by a non-system program ---------------------------------------------
filter contains {"rule": "Mount by non-system program", "syscalls": ["mount"]}

violations contains lib.violation("Mount by non-system program", "warning", lib.line([
	"A file system was mounted (target=", input.path, " result ", input.ret, " ", lib.proc_desc, ")",
])) if {
	input.syscall == "mount"

	# MS_UNBINDABLE|MS_PRIVATE|MS_SLAVE|MS_SHARED: a propagation change (unshare -m), not a mount.
	bits.and(input.mount.flags, 983040) == 0
	not input.proc.name in {"systemd", "dockerd", "containerd", "runc", "containerd-shim", "snapd", "udisksd"}
	not startswith(input.proc.name, "runc:") # runc init sets up the container's mounts
	not lib.parent_name in {"dockerd", "containerd"} # their re-exec'd helpers (comm "exe")
}

# --- Outbound connection from a workload without an egress policy -------------------------------
# Falco's "Unexpected outbound connection destination", camblet's way: the agent knows which
# workloads a loaded policy gives egress (input.workload.egress_policy; null when it does not
# know, which never fires). Loopback counts: camblet's policies govern local connections too.
# Every cgroup: a workload is attested at its first connection, after the kernel saw it.
filter contains {"rule": "Outbound connection without egress policy", "syscalls": ["connect"]}

violations contains lib.violation("Outbound connection without egress policy", "notice", lib.line([
	"Outbound connection from a workload that no policy gives egress (dest=", input.addr.ip, ":", input.addr.port, " result ", input.ret, " labels=", concat(",", input.labels), " ", lib.proc_desc, ")",
])) if {
	input.syscall == "connect"
	input.workload.egress_policy == false
	input.addr.family in {2, 10}
	input.addr.port != 0 # AF_INET with port 0: not a connection
	input.addr.port != 53 # name lookups (UDP connect to the resolver)
	connection_started
}

# A connection that was made, or is being made (non-blocking: EINPROGRESS).
connection_started if lib.succeeded

connection_started if input.ret == -115
