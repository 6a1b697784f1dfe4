/**
 * Replays the kernel side of a captured transcript (`testdata/camblet-driver/transcripts/*.jsonl`)
 * through the emulator: every `kernel->agent` line is sent byte for byte, in order, and every
 * request is tracked to its answer with the emulator's checks.
 *
 * @module
 */
import type { KernelEmulator, RequestResult } from "./kernel_emulator.ts";

/** One transcript record (see the testdata README). */
export interface TranscriptEntry {
  seq: number;
  t: number;
  dir: "kernel->agent" | "agent->kernel";
  raw: string;
  bytes: number;
  reply_to?: string;
  answer_ms?: number;
  injected_delay_s?: number;
  note?: string;
}

/** Reads a `.jsonl` transcript. */
export async function readTranscript(path: string | URL): Promise<TranscriptEntry[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l.trim() !== "").map((l) =>
    JSON.parse(l) as TranscriptEntry
  );
}

/** Options of {@linkcode replayTranscript}. */
export interface ReplayOptions {
  /** Upper bound of the pause between two kernel messages, ms (default 5; the capture ran emulated). */
  maxGapMs?: number;
}

/** Result of a replay: one result per kernel line (logs resolve as `answered` at once). */
export interface ReplayResult {
  sent: number;
  results: RequestResult[];
}

/**
 * Sends the transcript's kernel lines to the agent through `emu` and waits for every answer.
 * The raw lines keep the module's exact bytes (`\/` escapes, upper-case ids).
 */
export async function replayTranscript(
  emu: KernelEmulator,
  entries: TranscriptEntry[],
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const maxGap = options.maxGapMs ?? 5;
  const pending: Promise<RequestResult>[] = [];
  let prev: number | undefined;
  for (const e of entries) {
    if (e.dir !== "kernel->agent") continue;
    if (prev !== undefined) {
      const gap = Math.min(maxGap, Math.max(0, (e.t - prev) * 1000));
      if (gap > 0) await new Promise((r) => setTimeout(r, gap));
    }
    prev = e.t;
    pending.push(emu.request(e.raw.endsWith("\n") ? e.raw.slice(0, -1) : e.raw));
  }
  return { sent: pending.length, results: await Promise.all(pending) };
}
