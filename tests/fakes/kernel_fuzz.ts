/**
 * Hostile kernel lines for the fuzz test: a seeded generator of what a broken or malicious sender
 * could put on `/dev/camblet` (truncated JSON, wrong types, missing fields, CSRs without armour,
 * deep nesting, raw escape bytes, oversized lines, `Object.prototype` keys in every field), each
 * case labelled with the id a careful agent can recover from it, and a tracker that matches the
 * agent's answers to those ids on a {@linkcode KernelEmulator}.
 *
 * @module
 */
import { csrAnswerProblem } from "../../driver/answers.ts";
import { checkAugmentAnswer, checkCsrAnswer } from "../../driver/emulator/checks.ts";
import type { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { syntheticTask } from "../../driver/emulator/tasks.ts";
import { sharedNow } from "../../driver/transport.ts";

/** Keys every plain object inherits: as a command, id, field name or value they must be inert. */
export const PROTO_KEYS = [
  "constructor",
  "toString",
  "__proto__",
  "hasOwnProperty",
  "valueOf",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__defineGetter__",
] as const;

/** One generated line and what a careful agent must do with it. */
export interface FuzzCase {
  /** The bytes, `\n` included. */
  bytes: Uint8Array<ArrayBuffer>;
  /** Name of the mutation (for the report). */
  kind: string;
  /** The id that can be recovered unambiguously, if any: the agent must answer it in time. */
  id?: string;
  /** What the kernel would be waiting for under that id (`any`: the command is unreadable). */
  wants?: "augment" | "csr_sign" | "other" | "any";
  /** For a csr_sign whose CSR is readable: the key the certificate must carry. */
  spki?: Uint8Array;
}

/** What the generator needs: kernel-style CSRs for the module's key, and that key. */
export interface FuzzMaterial {
  csrs: string[];
  spki: Uint8Array;
}

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const enc = new TextEncoder();

/** Serialises like the module (parson escapes `/`). */
function kj(v: unknown): string {
  return JSON.stringify(v).replaceAll("/", "\\/");
}

/** A seeded upper-case UUID v4, as the kernel prints them. */
function uuid(r: () => number): string {
  const h = () => Math.floor(r() * 16).toString(16).toUpperCase();
  const s = (n: number) => Array.from({ length: n }, h).join("");
  return `${s(8)}-${s(4)}-4${s(3)}-${"89AB"[Math.floor(r() * 4)]}${s(3)}-${s(12)}`;
}

/**
 * Generates `n` cases from `seed`. Roughly a quarter are well-formed requests carrying
 * prototype keys in their values; the rest are broken in one way each.
 */
export function fuzzCases(seed: number, n: number, m: FuzzMaterial): FuzzCase[] {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const proto = () => pick(PROTO_KEYS);
  const out: FuzzCase[] = [];
  const task = (i: number) => {
    const t = syntheticTask(i) as unknown as Record<string, unknown>;
    return t;
  };
  const csrData = () => kj({ csr: pick(m.csrs), ttl: "3600s" });
  const line = (s: string | Uint8Array<ArrayBuffer>) =>
    typeof s === "string" ? enc.encode(s + "\n") : s;
  const request = (command: string, id: string, over: Record<string, unknown> = {}) => {
    const o: Record<string, unknown> = { task_context: task(out.length), id, command };
    if (command === "csr_sign") o["data"] = csrData();
    o["is_message"] = false;
    return Object.assign(o, over);
  };
  const cases: (() => FuzzCase)[] = [
    // Well-formed, prototype keys as values of every string field.
    () => {
      const id = uuid(r);
      const t = task(out.length);
      t["command_name"] = proto();
      t["command_path"] = proto();
      t["cgroup_path"] = proto();
      return {
        bytes: line(kj(request("augment", id, { task_context: t }))),
        kind: "proto_values_augment",
        id,
        wants: "augment",
      };
    },
    () => {
      const id = uuid(r);
      const t = task(out.length);
      t["command_name"] = proto();
      const data = kj({ csr: pick(m.csrs), ttl: proto() });
      return {
        bytes: line(kj(request("csr_sign", id, { task_context: t, data }))),
        kind: "proto_values_csr_sign",
        id,
        wants: "csr_sign",
        spki: m.spki,
      };
    },
    // A prototype key as the command, with an id: the one line that used to kill the agent.
    () => {
      const id = uuid(r);
      return { bytes: line(kj(request(proto(), id))), kind: "proto_command", id, wants: "other" };
    },
    // ... and without an id, or as a message.
    () => ({
      bytes: line(kj({ task_context: task(out.length), command: proto(), is_message: r() < 0.5 })),
      kind: "proto_command_no_id",
    }),
    // A prototype key as the id (not a UUID: nothing to answer).
    () => ({ bytes: line(kj(request("augment", proto()))), kind: "proto_id" }),
    // Prototype keys as field names, at the top level, in the task context, in namespace_ids and
    // in the CSR data.
    () => {
      const id = uuid(r);
      const k = proto();
      const body = kj(request("augment", id)).slice(1);
      return {
        bytes: line(`{"${k}":{"uid":0,"command":"csr_sign"},${body}`),
        kind: "proto_top_key",
        id,
        wants: "augment",
      };
    },
    () => {
      const id = uuid(r);
      const t = kj(task(out.length));
      const k = proto();
      const tc = `{"${k}":{"uid":0},` +
        t.slice(1).replace('"namespace_ids":{', `"namespace_ids":{"${proto()}":1,`);
      return {
        bytes: line(`{"task_context":${tc},"id":"${id}","command":"augment","is_message":false}`),
        kind: "proto_task_keys",
        id,
        wants: "augment",
      };
    },
    () => {
      const id = uuid(r);
      const data = `{"${proto()}":"x","csr":${kj(pick(m.csrs))},"ttl":"3600s","${proto()}":{}}`;
      return {
        bytes: line(kj(request("csr_sign", id, { data }))),
        kind: "proto_data_keys",
        id,
        wants: "csr_sign",
        spki: m.spki,
      };
    },
    () => ({
      bytes: line(kj({
        task_context: task(out.length),
        id: uuid(r),
        command: "log",
        data: `{"message":"x","${proto()}":"y","${proto()}":"z"}`,
        is_message: true,
      })),
      kind: "proto_log_keys",
    }),
    // Truncated after the id (recoverable) or before it (not).
    () => {
      const command = r() < 0.5 ? "augment" : "csr_sign";
      const id = uuid(r);
      const full = kj(request(command, id));
      const after = full.indexOf(id) + id.length + 1;
      const cut = after + Math.floor(r() * (full.length - 1 - after));
      const wants = full.slice(0, cut).includes('"command":"') &&
          full.slice(0, cut).includes(`"command":"${command}"`)
        ? command
        : "any";
      return { bytes: line(full.slice(0, cut)), kind: "truncated_after_id", id, wants };
    },
    () => {
      const full = kj(request(pick(["augment", "csr_sign"]), uuid(r)));
      const cut = Math.floor(r() * (full.indexOf('"id":"') + 6));
      return { bytes: line(full.slice(0, cut)), kind: "truncated_before_id" };
    },
    // Wrong types.
    () => {
      const id = uuid(r);
      const data = pick<unknown>([42, null, true, [], { csr: pick(m.csrs) }, proto()]);
      return {
        bytes: line(kj(request("csr_sign", id, { data }))),
        kind: "csr_data_type",
        id,
        wants: "csr_sign",
      };
    },
    () => {
      const id = uuid(r);
      const ttl = pick<unknown>([3600, null, [], {}, { [proto()]: 1 }]);
      const data = kj({ csr: pick(m.csrs), ttl });
      return {
        bytes: line(kj(request("csr_sign", id, { data }))),
        kind: "csr_ttl_type",
        id,
        wants: "csr_sign",
        spki: m.spki,
      };
    },
    () => {
      const id = uuid(r);
      const t = task(out.length);
      const f = pick([
        "uid",
        "gid",
        "pid",
        "command_name",
        "command_path",
        "cgroup_path",
        "namespace_ids",
      ]);
      t[f] = pick<unknown>(["root", -1, 1.5, 2 ** 60, null, [], {}, proto(), 7]);
      return {
        bytes: line(kj(request("augment", id, { task_context: t }))),
        kind: "task_field_type",
        id,
        wants: "augment",
      };
    },
    () => {
      const id = uuid(r);
      const command = pick(["augment", "csr_sign"]);
      const tc = pick<unknown>(["x", 1, [], null, true]);
      return {
        bytes: line(kj(request(command, id, { task_context: tc }))),
        kind: "task_type",
        id,
        wants: command as "augment" | "csr_sign",
        ...(command === "csr_sign" ? { spki: m.spki } : {}),
      };
    },
    () => {
      const id = uuid(r);
      const command = pick(["augment", "csr_sign"]);
      const is_message = pick<unknown>(["false", 0, null, [], "true"]);
      return {
        bytes: line(kj(request(command, id, { is_message }))),
        kind: "is_message_type",
        id,
        wants: command as "augment" | "csr_sign",
        ...(command === "csr_sign" ? { spki: m.spki } : {}),
      };
    },
    () => {
      const id = uuid(r);
      const command = pick<unknown>([1, null, [], { augment: true }, true, ""]);
      return {
        bytes: line(kj(request("augment", id, { command }))),
        kind: "command_type",
        id,
        wants: "any",
      };
    },
    () => ({
      bytes: line(pick(['"augment"', "42", "null", "true", "[]", '"' + proto() + '"'])),
      kind: "top_level_type",
    }),
    () => {
      const id = uuid(r);
      return {
        bytes: line(`[${kj(request("augment", id))}]`),
        kind: "top_level_array",
        id,
        wants: "augment",
      };
    },
    // Missing fields.
    () => {
      const id = uuid(r);
      const command = pick(["augment", "csr_sign"]);
      const o = request(command, id);
      delete o["command"];
      return { bytes: line(kj(o)), kind: "missing_command", id, wants: "any" };
    },
    () => {
      const id = uuid(r);
      const command = pick(["augment", "csr_sign"]);
      const o = request(command, id);
      delete o["is_message"];
      return {
        bytes: line(kj(o)),
        kind: "missing_is_message",
        id,
        wants: command as "augment" | "csr_sign",
        ...(command === "csr_sign" ? { spki: m.spki } : {}),
      };
    },
    () => {
      const command = pick(["augment", "csr_sign"]);
      const o = request(command, "x");
      delete o["id"];
      return { bytes: line(kj(o)), kind: "missing_id" };
    },
    () => {
      const id = uuid(r);
      const command = pick(["augment", "csr_sign"]);
      const o = request(command, id);
      delete o["task_context"];
      return {
        bytes: line(kj(o)),
        kind: "missing_task",
        id,
        wants: command as "augment" | "csr_sign",
        ...(command === "csr_sign" ? { spki: m.spki } : {}),
      };
    },
    () => {
      const id = uuid(r);
      const o = request("csr_sign", id);
      delete o["data"];
      return { bytes: line(kj(o)), kind: "missing_data", id, wants: "csr_sign" };
    },
    // CSRs that cannot be read.
    () => {
      const id = uuid(r);
      const pem = pick(m.csrs);
      const body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
      const csr = pick([
        body,
        pem.slice(0, Math.floor(pem.length / 2)),
        pem.replace(/[A-Za-z0-9+/]{10}/, "!!!!!!!!!!"),
        proto(),
        "",
        "-----BEGIN CERTIFICATE REQUEST-----\n" + "A".repeat(64) +
        "\n-----END CERTIFICATE REQUEST-----\n",
      ]);
      return {
        bytes: line(kj(request("csr_sign", id, { data: kj({ csr }) }))),
        kind: "csr_unreadable",
        id,
        wants: "csr_sign",
      };
    },
    () => {
      const id = uuid(r);
      return {
        bytes: line(kj(request("csr_sign", id, { data: "{not json" }))),
        kind: "csr_data_not_json",
        id,
        wants: "csr_sign",
      };
    },
    // Deep nesting, in the task context, in data and around everything.
    () => {
      const id = uuid(r);
      const depth = 1000 + Math.floor(r() * 20000);
      const deep = "[".repeat(depth) + "]".repeat(depth);
      return {
        bytes: line(`{"task_context":${deep},"id":"${id}","command":"augment","is_message":false}`),
        kind: "deep_task",
        id,
        wants: "augment",
      };
    },
    () => {
      const id = uuid(r);
      const depth = 1000 + Math.floor(r() * 20000);
      const data = '{"csr":' + '{"a":'.repeat(depth) + "1" + "}".repeat(depth) + "}";
      return {
        bytes: line(kj(request("csr_sign", id, { data }))),
        kind: "deep_data",
        id,
        wants: "csr_sign",
      };
    },
    () => {
      const depth = 1000 + Math.floor(r() * 20000);
      return { bytes: line("[".repeat(depth) + "]".repeat(depth)), kind: "deep_top" };
    },
    // Escape bytes: raw control characters (not JSON), JSON escapes (valid), invalid UTF-8.
    () => {
      const id = uuid(r);
      const command = pick(["augment", "csr_sign"]);
      const s = kj(request(command, id));
      const at = s.indexOf('"command_name":"') + 16;
      const junk = pick(["\x1b[2J\x1b[31m", "\x00\x01\x02", "\x07\x08\x7f", "\x1b]0;pwned\x07"]);
      return {
        bytes: line(s.slice(0, at) + junk + s.slice(at)),
        kind: "raw_escape_bytes",
        id,
        wants: command as "augment" | "csr_sign",
      };
    },
    () => {
      const id = uuid(r);
      const t = task(out.length);
      t["command_name"] = "\u0000\u001b[2J" + proto();
      return {
        bytes: line(kj(request("augment", id, { task_context: t }))),
        kind: "json_escapes",
        id,
        wants: "augment",
      };
    },
    () => {
      const id = uuid(r);
      const s = enc.encode(kj(request("augment", id)));
      const at = new TextDecoder().decode(s).indexOf('"command_name":"') + 16;
      const b = new Uint8Array(s.length + 4);
      b.set(s.subarray(0, at));
      b.set([0xff, 0xfe, 0xc0, 0x80], at);
      b.set(s.subarray(at), at + 4);
      const withNl = new Uint8Array(b.length + 1);
      withNl.set(b);
      withNl[b.length] = 10;
      return { bytes: withNl, kind: "invalid_utf8", id, wants: "augment" };
    },
    () => {
      // An id spelled with JSON escapes is still that id.
      const id = uuid(r);
      const spelled = id.replace(/[A-F]/, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
      const s = kj(request("augment", id)).replace(id, spelled);
      return { bytes: line(s), kind: "escaped_id", id, wants: "augment" };
    },
    // Two different ids in a broken line: ambiguous, nothing may be answered for a guess.
    () => {
      const a = kj(request("augment", uuid(r)));
      const idB = uuid(r);
      const b = kj(request("csr_sign", idB));
      const cut = a.slice(0, -1) + "," + b.slice(0, b.indexOf(idB) + 60);
      return { bytes: line(cut), kind: "two_ids_broken" };
    },
    // Blank lines, CRLF, leading garbage.
    () => ({ bytes: line(pick(["", " ", "\t", "\r"])), kind: "blank" }),
    () => {
      const id = uuid(r);
      return { bytes: line(kj(request("augment", id)) + "\r"), kind: "crlf", id, wants: "augment" };
    },
    () => {
      const id = uuid(r);
      return {
        bytes: line("\ufeff" + kj(request("augment", id))),
        kind: "bom",
        id,
        wants: "augment",
      };
    },
    // A large but legal log line.
    () => ({
      bytes: line(kj({
        task_context: task(out.length),
        id: uuid(r),
        command: "log",
        data: kj({ message: "x".repeat(50_000 + Math.floor(r() * 100_000)) }),
        is_message: true,
      })),
      kind: "big_log",
    }),
  ];
  // Oversized lines (past the agent's 1 MiB limit), the id in the first bytes: a few, they are slow.
  const oversized = (): FuzzCase => {
    const id = uuid(r);
    const head = kj(request("augment", id)).slice(0, -1);
    return {
      bytes: line(head + ',"pad":"' + "p".repeat(1_100_000 + Math.floor(r() * 500_000)) + '"}'),
      kind: "oversized",
      id,
      wants: "augment",
    };
  };
  for (let i = 0; i < n; i++) {
    out.push(i % 1000 === 500 ? oversized() : pick(cases)());
  }
  return out;
}

/** How one case ended. */
export interface FuzzOutcome {
  c: FuzzCase;
  /** `answered` in time, `late`, `missing` (never), `error` (an error answer to a csr_sign or `any`), `bad` (unreadable). */
  result: "answered" | "late" | "missing" | "error" | "bad" | "none";
  latencyMs?: number;
  problem?: string;
}

/**
 * Sends cases to the agent through `emu` at `perSecond` and waits (up to the deadline plus
 * grace) for the answer to each recoverable id. Answers are read from `emu.received`; the
 * emulator reports them as unknown ids (it did not send these lines through `request`), which the
 * caller filters out of its problems with {@linkcode isFuzzNoise}.
 */
export async function runFuzz(
  emu: KernelEmulator,
  cases: FuzzCase[],
  options: { perSecond: number; deadlineMs?: number; onTick?: (i: number) => Promise<void> | void },
): Promise<FuzzOutcome[]> {
  const deadline = options.deadlineMs ?? 1000;
  const sentAt = new Map<string, { at: number; c: FuzzCase }>();
  const outcomes = new Map<FuzzCase, FuzzOutcome>();
  const checks: Promise<void>[] = [];
  let seen = emu.received.length;
  const collect = () => {
    for (; seen < emu.received.length; seen++) {
      const msg = emu.received[seen]!;
      if (msg.command !== "answer") continue;
      const id = typeof msg.message["id"] === "string" ? msg.message["id"].toUpperCase() : "";
      const s = sentAt.get(id);
      if (!s || outcomes.has(s.c)) continue;
      const latencyMs = msg.at - s.at;
      const o: FuzzOutcome = {
        c: s.c,
        result: latencyMs < deadline ? "answered" : "late",
        latencyMs,
      };
      outcomes.set(s.c, o);
      const answer = msg.message["answer"];
      const csrLike = s.c.wants === "csr_sign" || s.c.wants === "any";
      if (csrLike && msg.message["error"] !== undefined) {
        o.result = "error";
        o.problem = `error ${JSON.stringify(msg.message["error"])}`;
      } else if (csrLike) {
        const p = typeof answer === "string" ? csrAnswerProblem(answer) : "no answer string";
        if (p) {
          o.result = "bad";
          o.problem = p;
        } else if (s.c.spki) {
          checks.push(
            checkCsrAnswer(answer as string, s.c.spki).then((ch) => {
              if (ch.kind === "invalid") {
                o.result = "bad";
                o.problem = ch.problems.join("; ");
              }
            }),
          );
        }
      }
      if (o.result === "answered" && (s.c.wants === "augment" || s.c.wants === "any")) {
        const p = typeof answer === "string" ? checkAugmentAnswer(answer).problems : ["no answer"];
        if (p.length > 0) {
          o.result = "bad";
          o.problem = p.join("; ");
        }
      }
    }
  };
  const gap = 1000 / options.perSecond;
  const start = sharedNow();
  for (const [i, c] of cases.entries()) {
    const due = start + i * gap;
    const wait = due - sharedNow();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (c.id !== undefined) sentAt.set(c.id.toUpperCase(), { at: sharedNow(), c });
    emu.injectRaw(c.bytes);
    if (i % 50 === 0) {
      collect();
      await options.onTick?.(i);
    }
  }
  const end = sharedNow() + deadline + 500;
  while (sharedNow() < end) {
    collect();
    await new Promise((r) => setTimeout(r, 50));
  }
  collect();
  await Promise.all(checks);
  return cases.map((c) =>
    outcomes.get(c) ?? { c, result: c.id === undefined ? "none" : "missing" }
  );
}

/** True for the emulator's complaints about answers to fuzz ids (it did not track those). */
export function isFuzzNoise(problem: string, cases: FuzzCase[]): boolean {
  const m = /answer for unknown or timed-out id ([0-9A-F-]{36})/.exec(problem);
  if (!m) return false;
  return cases.some((c) => c.id?.toUpperCase() === m[1]);
}

/** Counts for the report: tried, with a recoverable id, answered in time, late, missing, error, bad. */
export function summarise(outcomes: FuzzOutcome[]): Record<string, number> {
  const s: Record<string, number> = Object.create(null);
  s["tried"] = outcomes.length;
  s["with_id"] = outcomes.filter((o) => o.c.id !== undefined).length;
  for (const o of outcomes) s[o.result] = (s[o.result] ?? 0) + 1;
  return s;
}

/** Per kind: `answered/with-id` and the other results, to see which mutation fails. */
export function byKind(outcomes: FuzzOutcome[]): Map<string, Map<string, number>> {
  const m = new Map<string, Map<string, number>>();
  for (const o of outcomes) {
    const k = m.get(o.c.kind) ?? new Map<string, number>();
    m.set(o.c.kind, k);
    k.set(o.result, (k.get(o.result) ?? 0) + 1);
  }
  return m;
}
