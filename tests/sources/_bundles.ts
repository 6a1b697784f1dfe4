/**
 * Test bundles made by real tools, independently of the agent's readers: tar archives written by
 * Python's `tarfile` (any entry, including the malicious ones GNU tar refuses to write), OPA
 * bundle signatures made with jose the way `opa sign` makes them (and by `opa sign` itself), and
 * opa-compiled issuance policies.
 *
 * @module
 */
import * as jose from "jose";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ensurePeer } from "../peers/ensure_peer.ts";
import { opaBuildBundle } from "../peers/opa.ts";

/** One archive entry. */
export interface TarSpec {
  name: string;
  /** Regular file content (default for `file`). */
  data?: string | Uint8Array;
  type?: "file" | "dir" | "symlink" | "hardlink" | "fifo";
  linkname?: string;
  /** Declared size override (to make an entry run past the end). */
}

// The system interpreter starts in a tenth of the time of a version-manager shim.
const PYTHON = (() => {
  try {
    return Deno.statSync("/usr/bin/python3").isFile ? "/usr/bin/python3" : "python3";
  } catch {
    return "python3";
  }
})();

const PY = `
import io, json, sys, tarfile, base64
spec = json.load(sys.stdin)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for e in spec["entries"]:
        info = tarfile.TarInfo(e["name"])
        info.mtime = 1700000000
        t = e.get("type", "file")
        data = base64.b64decode(e.get("data", ""))
        if t == "dir": info.type = tarfile.DIRTYPE
        elif t == "symlink": info.type, info.linkname = tarfile.SYMTYPE, e["linkname"]
        elif t == "hardlink": info.type, info.linkname = tarfile.LNKTYPE, e["linkname"]
        elif t == "fifo": info.type = tarfile.FIFOTYPE
        else: info.size = len(data)
        tar.addfile(info, io.BytesIO(data) if t == "file" else None)
sys.stdout.buffer.write(buf.getvalue())
`;

function b64(data: string | Uint8Array | undefined): string {
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : data ?? new Uint8Array();
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/** An uncompressed tar written by Python's tarfile (PAX format). */
export async function makeTar(entries: readonly TarSpec[]): Promise<Uint8Array> {
  const child = new Deno.Command(PYTHON, {
    args: ["-c", PY],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify({
    entries: entries.map((e) => ({ ...e, data: b64(e.data) })),
  })));
  await w.close();
  const out = await child.output();
  if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  return out.stdout;
}

/** gzip with the real `gzip` CLI. */
export async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command("gzip", { args: ["-c", "-n"], stdin: "piped", stdout: "piped" })
    .spawn();
  const w = child.stdin.getWriter();
  await w.write(data);
  await w.close();
  return (await child.output()).stdout;
}

/** A tar.gz of `entries`. */
export async function makeTarGz(entries: readonly TarSpec[]): Promise<Uint8Array> {
  return await gzip(await makeTar(entries));
}

/** A tar.gz of a directory, written by GNU tar (`./`-prefixed entries, as operators make them). */
export async function tarDirectory(dir: string): Promise<Uint8Array> {
  const out = await new Deno.Command("tar", {
    args: ["-czf", "-", "-C", dir, "."],
    stdout: "piped",
  })
    .output();
  if (out.code !== 0) throw new Error(`tar failed for ${dir}`);
  return out.stdout;
}

/** Sorted-key compact JSON (how test data.json/.manifest files are written, so raw = canonical). */
export function compactJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(compactJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${
      Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${compactJson(o[k])}`).join(",")
    }}`;
  }
  return JSON.stringify(v);
}

/** A signing key pair (RS256 unless said otherwise). */
export async function signingKey(alg = "RS256") {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { alg, publicKey, privateKey, publicPem: await jose.exportSPKI(publicKey) };
}

/** Options of {@linkcode signFiles}. */
export interface SignOptions {
  privateKey: CryptoKey;
  alg?: string;
  kid?: string;
  scope?: string;
}

/**
 * `.signatures.json` for `files` as OPA writes it: one compact JWS whose payload lists every file
 * with its SHA-256 (JSON files must already be compact with sorted keys: then their bytes are
 * OPA's canonical form).
 */
export async function signFiles(
  files: readonly { name: string; data: string | Uint8Array }[],
  o: SignOptions,
): Promise<string> {
  const payload: Record<string, unknown> = {
    files: files.map((f) => ({
      name: f.name,
      hash: createHash("sha256").update(f.data).digest("hex"),
      algorithm: "SHA-256",
    })),
  };
  if (o.scope !== undefined) payload["scope"] = o.scope;
  const header: jose.CompactJWSHeaderParameters = { alg: o.alg ?? "RS256", typ: "JWT" };
  if (o.kid) header.kid = o.kid;
  const jws = await new jose.CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader(header).sign(o.privateKey);
  return JSON.stringify({ signatures: [jws] });
}

/** Runs the real `opa sign --bundle .` in `dir` with a PEM private key file. */
export async function opaSign(dir: string, privateKeyPem: string): Promise<void> {
  const opa = await ensurePeer("opa");
  const keyFile = join(dir, "..", `key-${crypto.randomUUID()}.pem`);
  await Deno.writeTextFile(keyFile, privateKeyPem);
  try {
    const out = await new Deno.Command(opa, {
      args: ["sign", "--bundle", ".", "--signing-key", keyFile],
      cwd: dir,
      stderr: "piped",
    }).output();
    if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  } finally {
    await Deno.remove(keyFile);
  }
}

/** `policy.wasm` and `.manifest` of an opa-compiled issuance policy (`opa build -t wasm`). */
export async function issuanceWasm(
  regoDir = new URL("../../policies/rego/", import.meta.url).pathname,
  entrypoint = "camblet/issuance/decision",
): Promise<{ wasm: Uint8Array; manifest: string }> {
  const bundle = await opaBuildBundle(regoDir, { entrypoints: [entrypoint] });
  const tmp = await Deno.makeTempDir({ prefix: "camblet-wasm-" });
  try {
    await Deno.writeFile(join(tmp, "b.tar.gz"), bundle);
    const out = await new Deno.Command("tar", {
      args: ["-xzf", "b.tar.gz", "/policy.wasm", "/.manifest"],
      cwd: tmp,
    }).output();
    if (out.code !== 0) throw new Error("cannot unpack the opa bundle");
    return {
      wasm: await Deno.readFile(join(tmp, "policy.wasm")),
      manifest: await Deno.readTextFile(join(tmp, ".manifest")),
    };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Options of {@linkcode makeBundle}. */
export interface BundleSpec {
  /** Written to `.manifest` (compact, sorted keys). */
  revision?: string;
  /** Bundle files by path (`policies/web.yaml`, `policy.wasm`, `data.json`, …). */
  files: Record<string, string | Uint8Array>;
  /** Sign every file into `.signatures.json`. */
  sign?: SignOptions;
  /** Replace files after signing (tampering). */
  after?: Record<string, string | Uint8Array>;
}

/** An OPA-style bundle: tar.gz, entries rooted at `/`, optional `.manifest` and signature. */
export async function makeBundle(spec: BundleSpec): Promise<Uint8Array> {
  const files: Record<string, string | Uint8Array> = { ...spec.files };
  if (spec.revision !== undefined) {
    files[".manifest"] = compactJson({ revision: spec.revision, roots: [""] });
  }
  const entries: TarSpec[] = Object.entries(files).map(([name, data]) => ({
    name: `/${name}`,
    data,
  }));
  if (spec.sign) {
    const sig = await signFiles(
      Object.entries(files).map(([name, data]) => ({ name, data })),
      spec.sign,
    );
    entries.push({ name: "/.signatures.json", data: sig });
  }
  for (const [name, data] of Object.entries(spec.after ?? {})) {
    const e = entries.find((x) => x.name === `/${name}`);
    if (e) e.data = data;
    else entries.push({ name: `/${name}`, data });
  }
  return await makeTarGz(entries);
}

/** A policy giving processes named `name` the workload ID `name`. */
export const namedPolicy = (name: string): string =>
  `- selectors: [{process:name: ${name}}]\n  certificate: {workloadID: ${name}}\n`;

/** The one service of {@linkcode signedFleet} bundles. */
export const API_SERVICE =
  "- addresses: [{address: 10.0.0.7, port: 443}]\n  labels: {app:label: api}\n";

/** Makes signed bundles of one {@linkcode namedPolicy} per name plus {@linkcode API_SERVICE}. */
export function signedFleet(
  sign: SignOptions,
): (revision: string, names: string[]) => Promise<Uint8Array> {
  return (revision, names) =>
    makeBundle({
      revision,
      files: Object.fromEntries([
        ...names.map((n) => [`policies/${n}.yaml`, namedPolicy(n)]),
        ["services/api.yaml", API_SERVICE],
      ]),
      sign,
    });
}
