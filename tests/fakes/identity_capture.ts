/**
 * The real camblet-driver captures (`../../tests/testdata/camblet-driver/`, or `CAMBLET_TESTDATA`):
 * the kernel CSRs, the policies the capture loaded, and the kernel's own `csr_sign` requests with
 * their task contexts. Tests read them instead of inventing kernel data.
 *
 * @module
 */
import type { KernelPayloads, TaskContext } from "../../driver/payloads.ts";

/** The capture directory (absolute, trailing slash). */
export const CAPTURE_DIR: string = Deno.env.get("CAMBLET_TESTDATA") ??
  new URL("../../tests/testdata/camblet-driver/", import.meta.url).pathname;

/** When the capture ran (its certificates are valid for one hour from about 04:59 UTC). */
export const CAPTURE_TIME: number = Date.UTC(2026, 10, 22, 5, 0, 0);

/** A `pki/` file as text. */
export function pki(name: string): Promise<string> {
  return Deno.readTextFile(`${CAPTURE_DIR}pki/${name}`);
}

interface Line {
  dir: string;
  raw: string;
}

async function transcript(name = "baseline"): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(`${CAPTURE_DIR}transcripts/${name}.jsonl`);
  return text.trim().split("\n").map((l) => JSON.parse(l) as Line).map((l) => JSON.parse(l.raw));
}

/** The payloads the capture's agent pushed (decoded from its `load_*` writes). */
export async function capturePayloads(): Promise<KernelPayloads> {
  const out: Partial<Record<string, unknown>> = {};
  for (const m of await transcript()) {
    const cmd = m["command"] as string;
    if (cmd === "load_config" || cmd === "load_sd_info" || cmd === "load_policies") {
      out[cmd] = JSON.parse(atob(m["code"] as string));
    }
  }
  return out as unknown as KernelPayloads;
}

/** A kernel `csr_sign` request as read from the device. */
export interface CapturedCsrSign {
  id: string;
  task_context: TaskContext;
  data: string;
}

/** The capture's `csr_sign` request from the process called `commandName` (`python3`, `curl`). */
export async function captureCsrSign(commandName: string): Promise<CapturedCsrSign> {
  for (const m of await transcript()) {
    const task = m["task_context"] as TaskContext | undefined;
    if (m["command"] === "csr_sign" && task?.command_name === commandName) {
      return m as unknown as CapturedCsrSign;
    }
  }
  throw new Error(`Cannot find a csr_sign from "${commandName}" in the capture`);
}

/** The capture's answer to a request id (the Go-style agent's real answer). */
export async function captureAnswer(id: string): Promise<string> {
  for (const m of await transcript()) {
    if (m["command"] === "answer" && m["id"] === id) return m["answer"] as string;
  }
  throw new Error(`Cannot find the answer to "${id}" in the capture`);
}

/** The labels the capture's agent gave a task (what its augment answered from /proc). */
export function taskLabels(task: TaskContext): string[] {
  return [
    `process:name=${task.command_name}`,
    `process:uid=${task.uid}`,
    `process:gid=${task.gid}`,
    `process:binary:path=${task.command_path}`,
  ];
}
