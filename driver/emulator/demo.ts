/**
 * A kernel emulator you can watch, for machines without camblet-driver.
 *
 *   deno task demo                       # starts the agent on the emulator and plays a session
 *   deno run -A driver/emulator/demo.ts --manual   # prints the agent command; you start it
 *
 * The emulator plays the module's part for two real processes it starts, `python3` (the quickstart
 * policy's web server) and `curl`, and prints every answer as the module would judge it: labels,
 * issued certificates, and a refusal certificate when a process asks for an identity its policy
 * does not give it.
 *
 * @module
 */
import { KernelEmulator } from "./kernel_emulator.ts";
import { taskOf } from "./tasks.ts";
import type { TaskContext } from "../payloads.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const QUICKSTART = `${ROOT}policies/examples/quickstart`;

function agentArgs(device: string, dir: string): string[] {
  return [
    "--kernel-module-device",
    device,
    "--trust-domain",
    "acme.test",
    "--policies-path",
    `${QUICKSTART}/policies`,
    "--services-path",
    `${QUICKSTART}/services`,
    "--ca-pem-path",
    `${dir}/ca.pem`,
    "--control-socket",
    `${dir}/agent.sock`,
  ];
}

/** A long-lived process whose comm is `name` (a copy of sleep), for a real task context. */
async function workload(dir: string, name: string): Promise<Deno.ChildProcess> {
  const bin = `${dir}/${name}`;
  await Deno.copyFile("/bin/sleep", bin);
  await Deno.chmod(bin, 0o755);
  return new Deno.Command(bin, { args: ["300"], stdout: "null", stderr: "null" }).spawn();
}

async function play(emu: KernelEmulator, label: string, task: TaskContext, spiffeId: string) {
  const a = await emu.augment(task);
  console.log(
    `${label}: augment  ${a.outcome} in ${a.latencyMs.toFixed(1)} ms: ${
      (a.labels ?? []).filter((l) => l.startsWith("process:name") || l.startsWith("process:uid="))
        .join(" ")
    }`,
  );
  const c = await emu.csrSign(spiffeId, { ttl: "3600s", task });
  console.log(
    `${label}: csr_sign ${spiffeId} -> ${c.outcome} in ${c.latencyMs.toFixed(1)} ms` +
      (c.check?.problems.length ? ` (problems: ${c.check.problems.join("; ")})` : ""),
  );
  return c.outcome;
}

async function main(args: string[]): Promise<number> {
  const manual = args.includes("--manual");
  const emu = await KernelEmulator.open({ serializeCsrSign: false });
  const dir = await Deno.makeTempDir({ prefix: "camblet-demo-" });
  let agent: Deno.ChildProcess | undefined;
  const procs: Deno.ChildProcess[] = [];
  try {
    if (manual) {
      console.log(
        `kernel emulator on ${emu.path}; start the agent on it:\n\n  deno task start ${
          agentArgs(emu.path, dir).join(" ")
        }\n`,
      );
    } else {
      console.log(`kernel emulator on ${emu.path}; starting camblet-agent on it`);
      agent = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}main.ts`, "run", ...agentArgs(emu.path, dir)],
        stdout: "inherit",
        stderr: "inherit",
      }).spawn();
    }
    await emu.waitFor(() => emu.messages("load_policies").length > 0, "the agent", 600_000);
    console.log(
      `agent connected: trust domain ${emu.state.trustDomain}, ${emu.state.policies.policies.length} policies, ${
        Object.keys(emu.state.sdInfo).length
      } service addresses\n`,
    );
    const web = await workload(dir, "python3");
    const curl = await workload(dir, "curl");
    procs.push(web, curl);
    await new Promise((r) => setTimeout(r, 200));
    const outcomes = [
      await play(emu, "python3", taskOf(web.pid), "spiffe://acme.test/web"),
      await play(emu, "curl   ", taskOf(curl.pid), "spiffe://acme.test/curl"),
      // curl asking for the web server's identity: the agent must refuse (refusal certificate).
      await play(emu, "curl   ", taskOf(curl.pid), "spiffe://acme.test/web"),
    ];
    const problems = emu.problems();
    console.log(
      problems.length
        ? `\nthe module would object:\n  ${problems.join("\n  ")}`
        : "\nno problems seen",
    );
    const expected = ["issued", "issued", "refused"];
    const ok = problems.length === 0 && outcomes.every((o, i) => o === expected[i]);
    console.log(ok ? "demo: OK" : `demo: unexpected outcomes ${outcomes.join(", ")}`);
    return ok ? 0 : 1;
  } finally {
    for (const p of procs) {
      p.kill("SIGKILL");
      await p.status;
    }
    if (agent) {
      agent.kill("SIGTERM");
      await agent.status;
    }
    await emu.close();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
