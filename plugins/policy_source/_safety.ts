/**
 * What every policy source refuses, each with a reason: oversized downloads, archives and files,
 * too many files, paths that climb out of the source, links, decompression bombs and text that is
 * not UTF-8. (YAML alias bombs are refused by the agent's YAML parser, which expands at most 100
 * aliases per file.)
 *
 * @module
 */
import { z } from "zod";

/** Size and count limits of one source. */
export interface SourceLimits {
  /** Largest download (a bundle as fetched, compressed), bytes. */
  maxDownloadBytes: number;
  /** Largest total of all files after decompression, bytes. */
  maxTotalBytes: number;
  /** Largest single file, bytes (a wasm module counts too). */
  maxFileBytes: number;
  /** Most files (archive entries, or files found under the configured paths). */
  maxFiles: number;
}

/** Defaults: far above any real policy set, far below what hurts the agent. */
export const DEFAULT_LIMITS: Readonly<SourceLimits> = {
  maxDownloadBytes: 16 << 20,
  maxTotalBytes: 64 << 20,
  maxFileBytes: 8 << 20,
  maxFiles: 2000,
};

const positive = z.number().int().positive();

/** The `limits` block every source config accepts (each key optional). */
export const limitsSchema = z.object({
  maxDownloadBytes: positive.optional(),
  maxTotalBytes: positive.optional(),
  maxFileBytes: positive.optional(),
  maxFiles: positive.optional(),
}).strict().optional().transform((l): SourceLimits => ({
  maxDownloadBytes: l?.maxDownloadBytes ?? DEFAULT_LIMITS.maxDownloadBytes,
  maxTotalBytes: l?.maxTotalBytes ?? DEFAULT_LIMITS.maxTotalBytes,
  maxFileBytes: l?.maxFileBytes ?? DEFAULT_LIMITS.maxFileBytes,
  maxFiles: l?.maxFiles ?? DEFAULT_LIMITS.maxFiles,
}));

/** Content a source refuses; `file` is the path inside the source when one file is to blame. */
export class RefusedContentError extends Error {
  override name = "RefusedContentError";
  readonly file: string | undefined;
  readonly line: number | undefined;
  constructor(message: string, where: { file?: string; line?: number } = {}) {
    super(message);
    this.file = where.file;
    this.line = where.line;
  }
}

/** `1.5 MiB`-style sizes for messages. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KiB", "MiB", "GiB"];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) v /= 1024, i++;
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`;
}

/**
 * Decodes UTF-8 text strictly. Throws {@linkcode RefusedContentError} naming the line of the
 * first invalid byte.
 *
 * @example
 * ```ts
 * import { decodeUtf8 } from "./_safety.ts";
 * decodeUtf8("web.yaml", new TextEncoder().encode("- a: 1\n")); // "- a: 1\n"
 * ```
 */
export function decodeUtf8(file: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const loose = new TextDecoder("utf-8").decode(bytes);
    const line = loose.slice(0, Math.max(loose.indexOf("\uFFFD"), 0)).split("\n").length;
    throw new RefusedContentError("file is not UTF-8 text", { file, line });
  }
}

/**
 * Normalises a path inside an archive or repository to `a/b/c`: one leading `/` or `./` is
 * dropped (OPA bundles are rooted at `/`); empty, `.` and `..` segments, backslashes and NUL are
 * refused, so nothing can name a file outside the source.
 *
 * @example
 * ```ts
 * import { sourcePath } from "./_safety.ts";
 * sourcePath("/policies/web.yaml"); // "policies/web.yaml"
 * ```
 */
export function sourcePath(raw: string): string {
  let p = raw;
  if (p.startsWith("./")) p = p.slice(2);
  else if (p.startsWith("/")) p = p.slice(1);
  if (p.endsWith("/")) p = p.slice(0, -1);
  const bad = (why: string) =>
    new RefusedContentError(`path ${JSON.stringify(raw)} ${why}`, { file: raw });
  if (p === "") throw bad("is empty");
  if (p.includes("\0")) throw bad("contains a NUL byte");
  if (p.includes("\\")) throw bad("contains a backslash");
  if (p.length > 4096) throw bad("is longer than 4096 characters");
  for (const seg of p.split("/")) {
    if (seg === "..") throw bad("climbs out of the source (..)");
    if (seg === "" || seg === ".") throw bad("has an empty or '.' segment");
  }
  return p;
}

/** Counts bytes against a limit; throws when it is passed. */
export class ByteBudget {
  #used = 0;
  constructor(readonly limit: number, readonly what: string) {}
  get used(): number {
    return this.#used;
  }
  /** Adds `n` bytes. */
  take(n: number, file?: string): void {
    this.#used += n;
    if (this.#used > this.limit) {
      throw new RefusedContentError(
        `${this.what} is larger than the limit of ${formatSize(this.limit)}`,
        file === undefined ? {} : { file },
      );
    }
  }
}

async function readAll(
  stream: ReadableStream<Uint8Array>,
  budget: ByteBudget,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      budget.take(value.byteLength);
      chunks.push(value);
    }
  } catch (e) {
    await reader.cancel().catch(() => {});
    throw e;
  } finally {
    reader.releaseLock();
  }
  const out = new Uint8Array(budget.used);
  let at = 0;
  for (const c of chunks) out.set(c, at), at += c.byteLength;
  return out;
}

/**
 * Reads a response body, refusing it as soon as it passes `limit` bytes (a `Content-Length`
 * above the limit is refused before reading).
 */
export async function readBody(response: Response, limit: number): Promise<Uint8Array> {
  const declared = Number(response.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel();
    throw new RefusedContentError(
      `the download (${formatSize(declared)}) is larger than the limit of ${formatSize(limit)}`,
    );
  }
  if (!response.body) return new Uint8Array();
  return await readAll(response.body, new ByteBudget(limit, "the download"));
}

/** Whether `bytes` starts like gzip. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Gunzips `bytes`, stopping as soon as the output passes `limit` (a decompression bomb is refused
 * after at most `limit` bytes of work). Garbage and truncated input are refused with the reason.
 */
export async function gunzip(bytes: Uint8Array, limit: number): Promise<Uint8Array> {
  if (!isGzip(bytes)) throw new RefusedContentError("not a gzip archive (bad magic bytes)");
  const budget = new ByteBudget(limit, "the unpacked archive");
  const input = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
  try {
    return await readAll(input.pipeThrough(new DecompressionStream("gzip")), budget);
  } catch (e) {
    if (e instanceof RefusedContentError) throw e;
    throw new RefusedContentError(
      `cannot unpack the gzip archive (truncated or corrupt): ${(e as Error).message}`,
    );
  }
}

/** Lower-case hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A check failure from an error: refusals keep their file and line, others their message. */
export function problemOf(e: unknown): { file?: string; line?: number; message: string } {
  if (e instanceof RefusedContentError) {
    return {
      ...(e.file !== undefined ? { file: e.file } : {}),
      ...(e.line !== undefined ? { line: e.line } : {}),
      message: e.message,
    };
  }
  return { message: e instanceof Error ? e.message : String(e) };
}
