/**
 * Starts the agent on a real device for tests/kernel: the quickstart policies (trust domain
 * acme.test), a fresh self-signed CA and a control socket in a temp directory.
 *
 * @module
 */
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import { agentEntry, REPO_ROOT } from "../cli/_run.ts";
import { copyDir } from "../fakes/agent_process.ts";

/** A running agent on the real module. */
export interface RealAgent {
  dir: string;
  status(): Promise<AgentStatus>;
  log(): string;
  stop(): Promise<number>;
}

/** Starts `camblet-agent run` on `device` and waits until it is ready. */
export async function startAgentOnDevice(device: string): Promise<RealAgent> {
  const dir = await Deno.makeTempDir({ prefix: "camblet-kernel-test-" });
  await copyDir(`${REPO_ROOT}policies/examples/quickstart`, dir);
  const socket = `${dir}/agent.sock`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `--config=${REPO_ROOT}deno.json`,
      agentEntry(),
      "run",
      "--kernel-module-device",
      device,
      "--trust-domain",
      "acme.test",
      "--policies-path",
      `${dir}/policies`,
      "--services-path",
      `${dir}/services`,
      "--ca-pem-path",
      `${dir}/ca.pem`,
      "--control-socket",
      socket,
    ],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) text += new TextDecoder().decode(c);
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => child.status);
  const client = new ControlClient(socket);
  for (let i = 0; !/Agent ready/.test(text); i++) {
    if (i > 300) throw new Error(`the agent did not start:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    dir,
    log: () => text,
    status: () => client.json<AgentStatus>("/v1/status"),
    stop: async () => {
      client.close();
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const s = await done;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      return s.code;
    },
  };
}
