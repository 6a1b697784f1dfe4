/**
 * The `answer` payloads the kernel reads (protocol doc §2.3, §4.3): building the augment answer,
 * the labels the kernel's own task context already proves, and the shape check every `csr_sign`
 * answer passes before it is written (a malformed certificate answer can crash the module).
 *
 * @module
 */
import { decodeBase64Strict } from "./codec.ts";
import type { TaskContext } from "./payloads.ts";

/** Result of {@linkcode augmentAnswer}. */
export interface AugmentAnswer {
  /** `{"labels":{"k=v":true,…}}` as a string, ready for {@linkcode encodeAnswer}. */
  answer: string;
  /** Labels that were not `name=value` and were left out. */
  dropped: string[];
}

/**
 * Builds the augment answer from `name=value` labels (duplicates collapse, order kept).
 *
 * @example
 * ```ts
 * import { augmentAnswer } from "./answers.ts";
 * augmentAnswer(["process:name=curl", "bogus"]);
 * // { answer: '{"labels":{"process:name=curl":true}}', dropped: ["bogus"] }
 * ```
 */
export function augmentAnswer(labels: Iterable<string>): AugmentAnswer {
  // Null prototype: labels come from attestors and the kernel (JSON.stringify reads own keys only).
  const out: Record<string, true> = Object.create(null);
  const dropped: string[] = [];
  for (const label of labels) {
    if (typeof label === "string" && label.indexOf("=") > 0) out[label] = true;
    else dropped.push(String(label));
  }
  return { answer: JSON.stringify({ labels: out }), dropped };
}

/**
 * Labels the kernel's task context proves by itself, used when attestation cannot answer in time
 * (partial labels beat an error: a failed augment leaves the connection in plain TCP).
 */
export function taskLabels(task: TaskContext): string[] {
  return [
    `process:name=${task.command_name}`,
    `process:uid=${task.uid}`,
    `process:gid=${task.gid}`,
    `process:binary:path=${task.command_path}`,
  ];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function b64Field(o: Record<string, unknown>, key: string, path: string): string | undefined {
  const v = o[key];
  if (typeof v !== "string" || v === "") return `${path}${key}: missing or not a string`;
  if (!decodeBase64Strict(v)) return `${path}${key}: not standard padded base64`;
  return undefined;
}

/**
 * Checks a `csr_sign` answer the way the module reads it: `certificate.raw`, a `chain` array of
 * `{raw}` and at least one RSA `trust_anchors` entry, all base64 standard and padded. Returns the
 * problem, or undefined when the kernel can read it.
 */
export function csrAnswerProblem(answer: string): string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(answer);
  } catch (e) {
    return `not JSON (${(e as Error).message})`;
  }
  if (!isObject(v)) return "not a JSON object";
  const cert = v["certificate"];
  if (!isObject(cert)) return "certificate: missing or not an object";
  const p = b64Field(cert, "raw", "certificate.");
  if (p) return p;
  const chain = v["chain"];
  if (!Array.isArray(chain)) return "chain: missing or not an array";
  for (const [i, c] of chain.entries()) {
    if (!isObject(c)) return `chain[${i}]: not an object`;
    const q = b64Field(c, "raw", `chain[${i}].`);
    if (q) return q;
  }
  const anchors = v["trust_anchors"];
  if (!Array.isArray(anchors) || anchors.length === 0) return "trust_anchors: missing or empty";
  for (const [i, a] of anchors.entries()) {
    if (!isObject(a)) return `trust_anchors[${i}]: not an object`;
    const q = b64Field(a, "rawSubject", `trust_anchors[${i}].`);
    if (q) return q;
    const key = a["publicKey"];
    if (!isObject(key)) return `trust_anchors[${i}].publicKey: missing or not an object`;
    const n = b64Field(key, "RSA_N", `trust_anchors[${i}].publicKey.`) ??
      b64Field(key, "RSA_E", `trust_anchors[${i}].publicKey.`);
    if (n) return `${n} (the module reads every trust anchor as an RSA key)`;
  }
  return undefined;
}
