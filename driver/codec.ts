/**
 * The device protocol codec (protocol doc §2): parses kernel lines strictly into typed messages
 * (or an error that says where the line is wrong), and encodes the agent's messages as exactly one
 * line each. Pure: no I/O, no clock.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { jsonDeeperThan } from "./json_depth.ts";
import type {
  LoadConfig,
  LoadPolicies,
  LoadSdInfo,
  NamespaceIds,
  TaskContext,
} from "./payloads.ts";

/** `csr_sign` data: the kernel's PEM CSR and, when the policy has one, its ttl (e.g. `"3600s"`). */
export interface CsrSignData {
  csr: string;
  ttl?: string;
}

/** A kernel `log` record: `message`, optional `level` and `correlation_id`, more string fields. */
export interface KernelLog {
  message: string;
  level?: string;
  correlation_id?: string;
  [key: string]: string | undefined;
}

/** `augment`: the kernel wants labels for `task` (answer within 1 s). */
export interface AugmentRequest {
  command: "augment";
  id: string;
  task: TaskContext;
  isMessage: boolean;
}

/** `csr_sign`: the kernel wants `data.csr` signed (answer within 1 s, never with `error`). */
export interface CsrSignRequest {
  command: "csr_sign";
  id: string;
  task: TaskContext;
  data: CsrSignData;
  isMessage: boolean;
}

/** `log`: a trace line; never answered. */
export interface LogMessage {
  command: "log";
  id?: string;
  task: TaskContext;
  data: KernelLog;
  isMessage: boolean;
}

/** Any other command (`accept`/`connect` are defined by the module but never sent). */
export interface OtherMessage {
  command: "other";
  name: string;
  id?: string;
  task?: TaskContext;
  isMessage: boolean;
}

/** A parsed kernel → agent message. */
export type KernelMessage = AugmentRequest | CsrSignRequest | LogMessage | OtherMessage;

/**
 * Why a kernel line could not be used as it is: the `reason` of `camblet_kernel_malformed_total`.
 * A fixed set, so a hostile line cannot mint metric series or log keys.
 */
export const MALFORMED_REASONS = [
  "oversized",
  "not_json",
  "too_deep",
  "not_object",
  "missing_command",
  "bad_command",
  "unknown_command",
  "missing_id",
  "bad_id",
  "bad_is_message",
  "bad_task",
  "bad_data",
  "bad_csr",
  "bad_log",
] as const;

/** One of {@linkcode MALFORMED_REASONS}. */
export type MalformedReason = typeof MALFORMED_REASONS[number];

/** What could still be read from a line that failed to parse, so it can be answered if possible. */
export interface Recovered {
  /** The request id, only when exactly one UUID can be read as the id. */
  id?: string;
  /** True when several different ids were found (nothing is answered on a guess). */
  ambiguousId?: boolean;
  command?: string;
  isMessage?: boolean;
  task?: TaskContext;
  /** Labels proved by the task-context fields that are readable (all of them when `task` is set). */
  labels?: string[];
  data?: CsrSignData;
}

/** Result of {@linkcode parseKernelLine}. `error` names the field (`task_context.pid: …`). */
export type ParseResult =
  | { ok: true; message: KernelMessage }
  | { ok: false; reason: MalformedReason; error: string; recovered: Recovered };

const UUID = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;
const NAMESPACES: (keyof NamespaceIds)[] = ["uts", "ipc", "mnt", "pid", "net", "time", "cgroup"];
/** The module's messages nest 3 deep; past this a line is hostile (and deep values are costly). */
const MAX_DEPTH = 32;
/** accept/connect are defined by the module (never sent); anything else is not a kernel command. */
const OTHER_COMMANDS = new Set(["accept", "connect"]);

class FieldError extends Error {
  constructor(readonly path: string, reason: string, readonly kind: MalformedReason) {
    super(`${path}: ${reason}`);
  }
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") {
    return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  }
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v).slice(0, 40)}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Own properties only: a hostile line's `constructor` or `__proto__` must not read inherited ones. */
function own(o: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

function str(
  o: Record<string, unknown>,
  key: string,
  path: string,
  kind: MalformedReason,
): string {
  const v = own(o, key);
  if (typeof v !== "string") {
    throw new FieldError(
      path + key,
      v === undefined ? "missing" : `expected a string, got ${describe(v)}`,
      kind,
    );
  }
  return v;
}

function uint(o: Record<string, unknown>, key: string, path: string): number {
  const v = own(o, key);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new FieldError(
      path + key,
      v === undefined ? "missing" : `expected a non-negative integer, got ${describe(v)}`,
      "bad_task",
    );
  }
  return v;
}

function parseTask(v: unknown): TaskContext {
  if (!isObject(v)) {
    throw new FieldError(
      "task_context",
      v === undefined ? "missing" : `expected an object, got ${describe(v)}`,
      "bad_task",
    );
  }
  const ns = own(v, "namespace_ids");
  if (!isObject(ns)) {
    throw new FieldError(
      "task_context.namespace_ids",
      ns === undefined ? "missing" : `expected an object, got ${describe(ns)}`,
      "bad_task",
    );
  }
  const namespace_ids = {} as NamespaceIds;
  for (const k of NAMESPACES) namespace_ids[k] = uint(ns, k, "task_context.namespace_ids.");
  return {
    uid: uint(v, "uid", "task_context."),
    gid: uint(v, "gid", "task_context."),
    pid: uint(v, "pid", "task_context."),
    command_path: str(v, "command_path", "task_context.", "bad_task"),
    command_name: str(v, "command_name", "task_context.", "bad_task"),
    cgroup_path: str(v, "cgroup_path", "task_context.", "bad_task"),
    namespace_ids,
  };
}

/**
 * The labels the readable fields of a task context prove (the same names as `taskLabels` in
 * answers.ts), for a task context that is partly broken. A field that is unreadable gives no
 * label: guessing (say uid 0) could match a policy the process has no right to.
 */
function partialTaskLabels(v: unknown): string[] {
  if (!isObject(v)) return [];
  const out: string[] = [];
  const s = (k: string) => {
    const x = own(v, k);
    return typeof x === "string" ? x : undefined;
  };
  const n = (k: string) => {
    const x = own(v, k);
    return typeof x === "number" && Number.isSafeInteger(x) && x >= 0 ? x : undefined;
  };
  const name = s("command_name");
  if (name !== undefined) out.push(`process:name=${name}`);
  const uid = n("uid");
  if (uid !== undefined) out.push(`process:uid=${uid}`);
  const gid = n("gid");
  if (gid !== undefined) out.push(`process:gid=${gid}`);
  const path = s("command_path");
  if (path !== undefined) out.push(`process:binary:path=${path}`);
  return out;
}

function parseJsonString(text: string, path: string, kind: MalformedReason): unknown {
  if (jsonDeeperThan(text, MAX_DEPTH)) {
    throw new FieldError(path, `nested deeper than ${MAX_DEPTH}`, kind);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FieldError(path, `not JSON (${(e as Error).message})`, kind);
  }
}

const PEM_CSR = /-----BEGIN CERTIFICATE REQUEST-----[\s\S]*?-----END CERTIFICATE REQUEST-----\n?/;

/** The PEM CSR in `data` (a JSON string or an object), whatever else is wrong with it. */
function armouredCsr(data: unknown): string | undefined {
  let d = data;
  if (typeof data === "string") {
    try {
      d = jsonDeeperThan(data, MAX_DEPTH) ? undefined : JSON.parse(data);
    } catch {
      return undefined;
    }
  }
  const csr = isObject(d) ? own(d, "csr") : undefined;
  return typeof csr === "string" && csr.includes("-----BEGIN CERTIFICATE REQUEST-----")
    ? csr
    : undefined;
}

/** `data` of csr_sign: a JSON string (what the module sends) or, leniently, the object itself. */
function parseCsrData(data: unknown): CsrSignData {
  const d = typeof data === "string" ? parseJsonString(data, "data", "bad_data") : data;
  if (!isObject(d)) {
    throw new FieldError(
      "data",
      data === undefined ? "missing" : `expected a JSON object, got ${describe(d)}`,
      "bad_data",
    );
  }
  const csr = str(d, "csr", "data.", "bad_csr");
  if (!csr.includes("-----BEGIN CERTIFICATE REQUEST-----")) {
    throw new FieldError("data.csr", "not a PEM certificate request", "bad_csr");
  }
  const out: CsrSignData = { csr };
  if (own(d, "ttl") !== undefined) out.ttl = str(d, "ttl", "data.", "bad_data");
  if (typeof data !== "string") {
    throw new FieldError("data", `expected a string, got ${describe(data)}`, "bad_data");
  }
  return out;
}

function parseLogData(text: string): KernelLog {
  const d = parseJsonString(text, "data", "bad_log");
  if (!isObject(d)) {
    throw new FieldError("data", `expected a JSON object, got ${describe(d)}`, "bad_log");
  }
  // Null prototype: the keys are the kernel's (or an attacker's), `__proto__` included.
  const out = Object.create(null) as KernelLog;
  out.message = str(d, "message", "data.", "bad_log");
  for (const [k, v] of Object.entries(d)) {
    if (typeof v !== "string") {
      throw new FieldError(`data.${k}`, `expected a string, got ${describe(v)}`, "bad_log");
    }
    out[k] = v;
  }
  return out;
}

/** The JSON value (object or string) that starts at `from`, or undefined if it does not end. */
function valueAt(text: string, from: number, limit = 256 * 1024): string | undefined {
  const open = text.charCodeAt(from);
  let depth = 0;
  let inString = false;
  const end = Math.min(text.length, from + limit);
  for (let i = from; i < end; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) {
        inString = false;
        if (open === 34) return text.slice(from, i + 1);
      }
    } else if (c === 34) inString = true;
    else if (c === 123) depth++;
    else if (c === 125 && --depth === 0) return text.slice(from, i + 1);
  }
  return undefined;
}

/** Distinct values of `"key": <value pattern>` that are not inside an escaped (nested) string. */
function keyed(text: string, key: string, value: string): string[] {
  const re = new RegExp(`(?<!\\\\)"${key}"\\s*:\\s*${value}`, "g");
  const seen = new Set<string>();
  for (const m of text.matchAll(re)) seen.add(m[1]!);
  return [...seen];
}

function parseLoose(literal: string | undefined): unknown {
  if (literal === undefined) return undefined;
  try {
    return JSON.parse(literal);
  } catch {
    return undefined;
  }
}

/**
 * Reads an id, a command, a task context and a CSR out of a line that is not usable JSON, by
 * pattern. The kernel's ids are UUIDs: the id is the value of an `"id"` key when exactly one such
 * UUID exists, else the one upper-case UUID in the line; two different ones make it ambiguous.
 */
function recoverFromText(line: string): Recovered {
  const r: Recovered = {};
  // Upper-case spelling → the spelling in the line (the kernel matches the id it printed).
  const ids = new Map<string, string>();
  const UUID_IN_TEXT =
    "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}";
  for (const id of keyed(line, "id", `"(${UUID_IN_TEXT})(?="|$)`)) ids.set(id.toUpperCase(), id);
  if (ids.size === 0) {
    const bare =
      /(?<![0-9A-Za-z-])[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}(?![0-9A-Za-z-])/g;
    for (const m of line.matchAll(bare)) ids.set(m[0], m[0]);
  }
  if (ids.size === 1) r.id = [...ids.values()][0]!;
  else if (ids.size > 1) r.ambiguousId = true;
  const cmds = keyed(line, "command", '"([A-Za-z_]{1,32})"');
  if (cmds.length === 1) r.command = cmds[0]!;
  const msgs = keyed(line, "is_message", "(true|false)");
  if (msgs.length === 1) r.isMessage = msgs[0] === "true";
  const tc = /(?<!\\)"task_context"\s*:\s*(?=\{)/.exec(line);
  if (tc) {
    const v = parseLoose(valueAt(line, tc.index + tc[0].length, 64 * 1024));
    if (v !== undefined) recoverTask(r, v);
  }
  if (r.command === "csr_sign" || r.command === undefined) {
    const d = /(?<!\\)"data"\s*:\s*(?=")/.exec(line);
    const literal = d ? valueAt(line, d.index + d[0].length) : undefined;
    const data = parseLoose(literal);
    try {
      if (typeof data === "string") r.data = parseCsrData(data);
    } catch { /* a PEM block may still be in there */ }
    if (!r.data && d) {
      // Unescape just enough of the (broken) string to find an armoured CSR in it.
      // A kernel CSR is ~1-2 KiB: a bounded slice keeps the lazy PEM pattern linear.
      const raw = line.slice(d.index + d[0].length + 1, d.index + d[0].length + 1 + 16 * 1024)
        .replace(/\\\\n|\\n/g, "\n")
        .replace(/\\+\//g, "/");
      const pem = PEM_CSR.exec(raw);
      if (pem) r.data = { csr: pem[0].endsWith("\n") ? pem[0] : pem[0] + "\n" };
    }
  }
  return r;
}

function recoverTask(r: Recovered, v: unknown): void {
  try {
    r.task = parseTask(v);
    r.labels = partialTaskLabels(v);
  } catch {
    r.labels = partialTaskLabels(v);
  }
}

function fail(reason: MalformedReason, error: string, recovered: Recovered): ParseResult {
  return { ok: false, reason, error: `Cannot parse kernel message: ${error}`, recovered };
}

/**
 * Parses one kernel line (without or with its `\n`). The kernel escapes `/` as `\/`, which is
 * plain JSON. Unknown extra fields are ignored (newer modules may add some); known fields must
 * have the kernel's types. Never throws: whatever the line, the result says what was wrong
 * ({@linkcode MalformedReason}) and what could still be read for an answer.
 *
 * @example
 * ```ts
 * import { parseKernelLine } from "./codec.ts";
 * const r = parseKernelLine('{"id":"x","command":"augment"}');
 * // r.ok === false, r.reason === "bad_id",
 * // r.error === 'Cannot parse kernel message: id: expected a UUID, got string "x"'
 * ```
 */
export function parseKernelLine(line: string): ParseResult {
  let text = line.endsWith("\n") ? line.slice(0, -1) : line;
  if (text.endsWith("\r")) text = text.slice(0, -1);
  try {
    return parseText(text);
  } catch (e) {
    // Not expected: a parser bug must cost one line, not the kernel link.
    return fail("not_json", `unreadable (${(e as Error)?.message})`, safeRecover(text));
  }
}

function safeRecover(text: string): Recovered {
  try {
    return recoverFromText(text);
  } catch {
    return {};
  }
}

function parseText(text: string): ParseResult {
  // JSON.parse itself copes with any depth; deep lines are only named for what they are.
  const deep = () => jsonDeeperThan(text, MAX_DEPTH);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    if (deep()) return fail("too_deep", `nested deeper than ${MAX_DEPTH}`, recoverFromText(text));
    return fail("not_json", `not JSON (${(e as Error).message})`, recoverFromText(text));
  }
  if (!isObject(v)) {
    const why = `expected a JSON object, got ${describe(v)}`;
    return fail(deep() ? "too_deep" : "not_object", why, recoverFromText(text));
  }
  try {
    return parseObject(v);
  } catch (e) {
    if (!(e instanceof FieldError)) throw e;
    const recovered = recoverFromObject(v);
    return fail(deep() ? "too_deep" : e.kind, e.message, recovered);
  }
}

/** What a JSON object that failed {@linkcode parseObject} still says (each field on its own). */
function recoverFromObject(v: Record<string, unknown>): Recovered {
  const recovered: Recovered = {};
  const command = own(v, "command");
  if (typeof command === "string" && command !== "") recovered.command = command;
  const rawId = own(v, "id");
  if (typeof rawId === "string" && UUID.test(rawId)) recovered.id = rawId;
  const isMessage = own(v, "is_message");
  if (typeof isMessage === "boolean") recovered.isMessage = isMessage;
  const rawTask = own(v, "task_context");
  if (rawTask !== undefined) recoverTask(recovered, rawTask);
  const rawData = own(v, "data");
  if (command === "csr_sign" || command === undefined) {
    try {
      recovered.data = parseCsrData(rawData);
    } catch {
      // Lenient: a bad ttl or `data` as an object still names the CSR to refuse.
      const csr = armouredCsr(rawData);
      if (csr !== undefined) recovered.data = { csr };
    }
  }
  return recovered;
}

/** The strict parse of a kernel message object; throws a {@linkcode FieldError} naming the field. */
function parseObject(v: Record<string, unknown>): ParseResult {
  const command = own(v, "command");
  const rawId = own(v, "id");
  const isMessage = own(v, "is_message");
  const rawTask = own(v, "task_context");
  const rawData = own(v, "data");
  const recovered: { id?: string } = {};
  if (typeof rawId === "string" && UUID.test(rawId)) recovered.id = rawId;
  if (command === undefined) throw new FieldError("command", "missing", "missing_command");
  if (typeof command !== "string" || command === "") {
    throw new FieldError(
      "command",
      `expected a command name, got ${describe(command)}`,
      "bad_command",
    );
  }
  if (rawId !== undefined && recovered.id === undefined) {
    throw new FieldError(
      "id",
      typeof rawId === "string"
        ? `expected a UUID, got ${describe(rawId)}`
        : `expected a string, got ${describe(rawId)}`,
      "bad_id",
    );
  }
  const id = recovered.id;
  if (typeof isMessage !== "boolean") {
    throw new FieldError(
      "is_message",
      isMessage === undefined ? "missing" : `expected a boolean, got ${describe(isMessage)}`,
      "bad_is_message",
    );
  }
  switch (command) {
    case "augment":
      if (id === undefined) throw new FieldError("id", "missing", "missing_id");
      return {
        ok: true,
        message: { command, id, task: parseTask(rawTask), isMessage },
      };
    case "csr_sign": {
      if (id === undefined) throw new FieldError("id", "missing", "missing_id");
      const task = parseTask(rawTask);
      const data = parseCsrData(rawData);
      return { ok: true, message: { command, id, task, data, isMessage } };
    }
    case "log": {
      const task = parseTask(rawTask);
      const data = parseLogData(str(v, "data", "", "bad_log"));
      const message: LogMessage = { command, task, data, isMessage };
      if (id !== undefined) message.id = id;
      return { ok: true, message };
    }
    default: {
      if (!OTHER_COMMANDS.has(command)) {
        throw new FieldError(
          "command",
          `unknown command ${describe(command)}`,
          "unknown_command",
        );
      }
      const message: OtherMessage = { command: "other", name: command, isMessage };
      if (id !== undefined) message.id = id;
      try {
        if (rawTask !== undefined) message.task = parseTask(rawTask);
      } catch { /* accept/connect are answered without it */ }
      return { ok: true, message };
    }
  }
}

/** Standard base64 with padding, no newlines: what the module's decoder reads. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

const STRICT_B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes standard padded base64; returns undefined for anything else (URL-safe, unpadded, spaces). */
export function decodeBase64Strict(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!STRICT_B64.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, "base64"));
}

function line(message: Record<string, unknown>): string {
  // JSON.stringify escapes control characters, so the only newline is the terminator.
  return JSON.stringify(message) + "\n";
}

/** `answer` with a result: `answer` is the result JSON as a string. */
export function encodeAnswer(id: string, answer: string): string {
  return line({ command: "answer", id, answer });
}

/** `answer` with an error. Never for `csr_sign` (it crashes the module). */
export function encodeErrorAnswer(id: string, error: string): string {
  return line({ command: "answer", id, error });
}

function encodeCode(command: string, payload: unknown): string {
  const json = new TextEncoder().encode(JSON.stringify(payload));
  return line({ command, code: encodeBase64(json) });
}

/** `load_config`: the trust domain. */
export function encodeLoadConfig(payload: LoadConfig): string {
  return encodeCode("load_config", payload);
}

/** `load_sd_info`: the whole service table (replaces the kernel's). */
export function encodeLoadSdInfo(payload: LoadSdInfo): string {
  return encodeCode("load_sd_info", payload);
}

/** `load_policies`: the whole policy set (replaces the kernel's). */
export function encodeLoadPolicies(payload: LoadPolicies): string {
  return encodeCode("load_policies", payload);
}

/** A kernel trace filter change. The kernel wants `clear`, not the Go agent's `clear_all`. */
export interface TraceRequest {
  action: "add" | "remove" | "clear";
  pid?: number;
  uid?: number;
  command_name?: string;
}

/** `manage_trace_requests`: `data` is the request JSON as a string (not base64). */
export function encodeTraceRequest(request: TraceRequest): string {
  const data: Record<string, unknown> = { action: request.action };
  if (request.pid !== undefined) data["pid"] = request.pid;
  if (request.uid !== undefined) data["uid"] = request.uid;
  if (request.command_name !== undefined) data["command_name"] = request.command_name;
  return line({ command: "manage_trace_requests", data: JSON.stringify(data) });
}
