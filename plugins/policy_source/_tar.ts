/**
 * A bounded, in-memory tar reader for policy bundles (ustar, GNU and PAX headers, as `opa build`,
 * GNU tar and Python write them). Only regular files and directories are accepted: symbolic and
 * hard links, devices and FIFOs are refused, as are paths that climb out of the bundle, duplicate
 * paths, bad header checksums and entries that run past the end of the archive.
 *
 * @module
 */
import { formatSize, RefusedContentError, sourcePath } from "./_safety.ts";

/** One regular file of an archive. */
export interface TarEntry {
  /** Normalised path (`policies/web.yaml`). */
  path: string;
  data: Uint8Array;
}

/** Limits of {@linkcode readTar}. */
export interface TarLimits {
  maxFiles: number;
  maxFileBytes: number;
}

const BLOCK = 512;
const decoder = new TextDecoder();

function field(h: Uint8Array, start: number, length: number): string {
  const bytes = h.subarray(start, start + length);
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function octal(h: Uint8Array, start: number, length: number, what: string, at: number): number {
  // GNU base-256 for sizes of 8 GiB and more: far above any limit.
  if (h[start]! & 0x80) {
    throw new RefusedContentError(`not a tar archive: base-256 ${what} field at offset ${at}`);
  }
  const text = field(h, start, length).trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) {
    throw new RefusedContentError(`not a tar archive: bad ${what} field at offset ${at}`);
  }
  return parseInt(text, 8);
}

function checksumOk(h: Uint8Array, at: number): boolean {
  const stored = octal(h, 148, 8, "checksum", at);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === stored;
}

/** PAX records `len key=value\n`. */
function paxRecords(data: Uint8Array, at: number): Map<string, string> {
  const out = new Map<string, string>();
  const text = decoder.decode(data);
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(" ", i);
    const len = Number(text.slice(i, sp));
    if (sp < 0 || !Number.isInteger(len) || len <= 0) {
      throw new RefusedContentError(`tar PAX header at offset ${at} is malformed`);
    }
    const record = text.slice(sp + 1, i + len - 1);
    const eq = record.indexOf("=");
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    i += len;
  }
  return out;
}

const KINDS: Record<string, string> = {
  "1": "a hard link",
  "2": "a symbolic link",
  "3": "a character device",
  "4": "a block device",
  "6": "a FIFO",
  "7": "a contiguous file",
  "K": "a long link name",
  "S": "a sparse file",
  "V": "a volume header",
};

/**
 * Reads every regular file of the (uncompressed) tar `bytes`. Throws
 * {@linkcode RefusedContentError} with the reason and the entry's path.
 */
export function readTar(bytes: Uint8Array, limits: TarLimits): TarEntry[] {
  const entries: TarEntry[] = [];
  const seen = new Set<string>();
  let longName: string | undefined;
  let pax: Map<string, string> | undefined;
  if (bytes.length < BLOCK) {
    throw new RefusedContentError(`not a tar archive: only ${bytes.length} bytes`);
  }
  let at = 0;
  let ended = false;
  while (at + BLOCK <= bytes.length) {
    const h = bytes.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) {
      ended = true; // end-of-archive marker
      break;
    }
    if (!checksumOk(h, at)) {
      throw new RefusedContentError(`not a tar archive: header checksum mismatch at offset ${at}`);
    }
    const type = String.fromCharCode(h[156]!);
    const magic = field(h, 257, 6);
    let name = field(h, 0, 100);
    const prefix = magic === "ustar" ? field(h, 345, 155) : "";
    if (prefix) name = `${prefix}/${name}`;
    if (longName !== undefined) name = longName;
    if (pax?.has("path")) name = pax.get("path")!;
    let size = octal(h, 124, 12, "size", at);
    if (pax?.has("size")) size = Number(pax.get("size"));
    const start = at + BLOCK;
    const end = start + size;
    if (!Number.isSafeInteger(size) || size < 0 || end > bytes.length) {
      throw new RefusedContentError(
        `tar archive is truncated: entry ${JSON.stringify(name)} needs ${size} bytes`,
      );
    }
    at = start + Math.ceil(size / BLOCK) * BLOCK;
    const data = () => bytes.subarray(start, end);
    if (type === "x" || type === "L") {
      if (size > 1 << 20) {
        throw new RefusedContentError(`tar extended header at offset ${start} is too large`);
      }
      if (type === "x") pax = paxRecords(data(), start);
      else longName = field(data(), 0, size);
      continue;
    }
    longName = undefined;
    pax = undefined;
    // Global PAX headers carry nothing we use; directories are implied by file paths.
    if (type === "g" || type === "5") continue;
    const path = sourcePath(name);
    if (KINDS[type]) {
      throw new RefusedContentError(`archive entry ${JSON.stringify(name)} is ${KINDS[type]}`, {
        file: path,
      });
    }
    if (type !== "0" && type !== "\0") {
      throw new RefusedContentError(
        `archive entry ${JSON.stringify(name)} has unsupported type ${JSON.stringify(type)}`,
        { file: path },
      );
    }
    if (seen.has(path)) {
      throw new RefusedContentError(`archive has ${JSON.stringify(path)} twice`, { file: path });
    }
    seen.add(path);
    if (size > limits.maxFileBytes) {
      throw new RefusedContentError(
        `file is ${formatSize(size)}, above the limit of ${formatSize(limits.maxFileBytes)}`,
        { file: path },
      );
    }
    if (entries.length >= limits.maxFiles) {
      throw new RefusedContentError(`archive has more than ${limits.maxFiles} files`);
    }
    entries.push({ path, data: data() });
  }
  if (!ended || longName !== undefined || pax !== undefined) {
    throw new RefusedContentError("tar archive is truncated: no end-of-archive marker");
  }
  return entries;
}
