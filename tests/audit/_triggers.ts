/**
 * The real commands that trigger each default audit rule (policies/rego/audit/rules.rego), in
 * one place so tests/audit/rule_coverage_test.ts can check that every rule has one:
 * native_rules_test.ts runs {@linkcode nativeCases} and the egress rule, docker_rules_test.ts
 * the {@linkcode DOCKER_RULES}.
 *
 * @module
 */

/** One rule, a command that triggers it and a near miss. */
export interface Case {
  rule: string;
  /** Shell command (run by `sh -c` as a child of the test). */
  hit: string;
  miss: string;
  /** The violating process's name and its parent's ("" when not fixed, e.g. a memfd exec). */
  name: string;
  parent: string;
  /** Syscalls reported, one record each (default: one record). */
  syscalls?: string[];
}

/** Paths the cases write to (made and removed by the test). */
export interface CaseEnv {
  tmp: string;
  etcFile: string;
  binFile: string;
  logFile: string;
  home: string;
  /** Syscalls a failed module load makes here (finit_module, then init_module without modules). */
  modSyscalls: string[];
}

/** The rule native_rules_test.ts triggers with a real connect and varying egressPolicyOf. */
export const EGRESS_RULE = "Outbound connection without egress policy";

/** The rules docker_rules_test.ts triggers in a real container. */
export const DOCKER_RULES = {
  shell: "Terminal shell in container",
  packageManager: "Launch Package Management Process in Container",
} as const;

/** Every native (host) case. */
export function nativeCases(env: CaseEnv): Case[] {
  const { tmp, etcFile, binFile, logFile, home } = env;
  const memfd = `import os; fd = os.memfd_create("camblet"); ` +
    `os.write(fd, open("/bin/true", "rb").read()); os.execv(f"/proc/self/fd/{fd}", ["x"])`;
  // PTRACE_ATTACH one process; the miss asks PTRACE_INTERRUPT (0x4208), not an attach.
  const ptrace = "import ctypes, sys; ctypes.CDLL(None).ptrace(16, int(sys.argv[1]), 0, 0)";
  return [
    {
      rule: "Read sensitive file untrusted",
      hit: "cat /etc/shadow",
      miss: "cat /etc/hostname",
      name: "cat",
      parent: "sh",
    },
    {
      rule: "Write below etc",
      hit: `touch ${etcFile}`,
      miss: "cat /etc/hostname",
      name: "touch",
      parent: "sh",
    },
    {
      rule: "Write below binary dir",
      hit: `touch ${binFile}`,
      miss: `touch ${tmp}/y`,
      name: "touch",
      parent: "sh",
    },
    {
      rule: "Netcat Remote Code Execution",
      hit: `${tmp}/nc -e /bin/sh 127.0.0.1 9`,
      miss: `${tmp}/nc -z 127.0.0.1 9`,
      name: "nc",
      parent: "sh",
    },
    {
      rule: "PTRACE attached to process",
      hit: `sleep 3 & p=$!; python3 -c '${ptrace}' $p; kill $p`,
      miss: `sleep 3 & p=$!; python3 -c '${ptrace.replace("(16,", "(0x4208,")}' $p; kill $p`,
      name: "python3",
      parent: "sh",
    },
    {
      rule: "Linux Kernel Module Injection Detected",
      hit: `insmod ${tmp}/bogus.ko`,
      miss: "lsmod",
      name: "insmod",
      parent: "sh",
      syscalls: env.modSyscalls,
    },
    {
      rule: "Set Setuid or Setgid bit",
      hit: `chmod u+s ${tmp}/f`,
      miss: `chmod 0640 ${tmp}/f`,
      name: "chmod",
      parent: "sh",
    },
    {
      rule: "Fileless execution via memfd_create",
      hit: `python3 -c '${memfd}'`,
      miss: "python3 -c pass",
      name: "",
      parent: "",
    },
    {
      rule: "Clear Log Activities",
      hit: `: > ${logFile}`,
      miss: `cat ${logFile}`,
      name: "sh",
      parent: "deno",
    },
    {
      rule: "Modify Shell Configuration File",
      hit: `echo x >> ${home}/.bashrc`,
      miss: `cat ${home}/.bashrc`,
      name: "sh",
      parent: "deno",
    },
    {
      rule: "Search Private Keys or Passwords",
      hit: `find ${tmp} -name id_rsa`,
      miss: `find ${tmp} -name f`,
      name: "find",
      parent: "sh",
    },
    {
      rule: "Detect outbound connections to common miner pool ports",
      hit: "bash -c 'echo > /dev/tcp/127.0.0.1/3333'",
      miss: "bash -c 'echo > /dev/tcp/127.0.0.1/1'",
      name: "bash",
      parent: "sh",
    },
    {
      rule: "Delete or rename shell history",
      hit: `rm ${tmp}/.bash_history`,
      miss: `rm ${tmp}/other`,
      name: "rm",
      parent: "sh",
    },
    {
      rule: "Mount by non-system program",
      hit: `unshare -m sh -c 'mount -t tmpfs none ${tmp}/m; true'`,
      miss: `unshare -m true`,
      name: "mount",
      parent: "sh",
    },
  ];
}

/** Rule names as rules.rego reports them (`lib.violation("<name>", …)`), in file order. */
export function reportedRules(rego: string): string[] {
  return [...rego.matchAll(/violations contains lib\.violation\("([^"]+)"/g)].map((m) => m[1]!);
}
