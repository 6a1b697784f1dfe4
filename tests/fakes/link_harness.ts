/**
 * Test harness: a kernel emulator on a real pty and a {@linkcode KernelLink} (real kernel worker,
 * real reader worker) opened on it, with the fake CA and recording handlers.
 *
 * @module
 */
import type { LogMessage } from "../../driver/codec.ts";
import type { Level } from "../../driver/dispatcher.ts";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { KernelLink, type LinkHandlers } from "../../driver/kernel_link.ts";
import type { TaskContext } from "../../driver/payloads.ts";
import { FakeCa } from "./fake_ca.ts";
import { spawnTestKernelWorker } from "./kernel_worker_entry.ts";

/** A running emulator + link. */
export interface Harness {
  emu: KernelEmulator;
  link: KernelLink;
  ca: FakeCa;
  logs: LogMessage[];
  events: { level: Level; message: string; props: Record<string, unknown> }[];
  /** Labels the augment handler returns (change per test); a function may throw or hang. */
  augment: (task: TaskContext, signal: AbortSignal) => Promise<string[]>;
  close(): Promise<void>;
}

/** Opens an emulator and a link with the given handler overrides. */
export async function openHarness(
  options: { trustDomain?: string; spiffeIds?: string[]; watchdogMs?: number } = {},
): Promise<Harness> {
  const td = options.trustDomain ?? "acme.test";
  const emu = await KernelEmulator.open();
  const ca = await FakeCa.create(td);
  const h: Partial<Harness> = { emu, ca, logs: [], events: [] };
  h.augment = (task) => Promise.resolve([`process:name=${task.command_name}`, "test:attested=yes"]);
  const handlers: LinkHandlers = {
    augment: (task, signal) => h.augment!(task, signal),
    csrSign: (_task, data) => ca.sign(data.csr),
    log: (m) => h.logs!.push(m),
  };
  const link = await KernelLink.open(spawnTestKernelWorker(), {
    device: emu.path,
    handlers,
    onEvent: (level, message, props) => h.events!.push({ level, message, props }),
    ...(options.watchdogMs !== undefined ? { watchdogMs: options.watchdogMs } : {}),
  });
  h.link = link;
  h.close = async () => {
    await link.close();
    await emu.close();
  };
  return h as Harness;
}
