/**
 * Where a Worker's code comes from. Run from source, each worker runs its own module. In the
 * bundle, each worker entry is also bundled on its own and embedded in the bundle's first lines
 * (packaging/bundle.ts), so a worker parses and keeps only its own code: started on the whole
 * 3.4 MB bundle, the kernel worker and the reader each held 15-16 MB of heap.
 *
 * @module
 */

/**
 * The global the bundle's first lines set: worker name → that worker's own bundled code,
 * compressed (raw deflate, base64). The main isolate keeps the bundle's whole source in its heap:
 * raw, the two workers' code took 1.9 MB of it, compressed 0.4 MB.
 */
export const WORKER_CODE_GLOBAL = "__cambletWorkerCode";

/** True when this code runs in a Worker created with `name` (`new Worker(url, { name })`). */
export function isWorkerNamed(name: string): boolean {
  const g = globalThis as unknown as { WorkerGlobalScope?: unknown; name?: string };
  return typeof g.WorkerGlobalScope !== "undefined" && g.name === name;
}

interface Zlib {
  deflateRawSync(b: Uint8Array, o: { level: number }): Uint8Array;
  inflateRawSync(b: Uint8Array): Uint8Array;
}
interface NodeBuffer {
  Buffer: {
    from(s: string, enc: "base64"): Uint8Array;
    from(b: Uint8Array): { toString(enc: "base64"): string };
  };
}

/**
 * A Node built-in, loaded only where it is used: the bundler and the main isolate of the bundle
 * (which has Deno's Node layer already). A static import would load it into every worker.
 */
function builtin<T>(name: string): T {
  const p = (globalThis as { process?: { getBuiltinModule?(n: string): unknown } }).process;
  const m = p?.getBuiltinModule?.(name);
  if (!m) throw new Error(`Cannot load the worker code: ${name} is not available`);
  return m as T;
}

const urls = new Map<string, string>();

/**
 * The module to start the Worker `name` on: its embedded code (one blob URL per name, kept for
 * restarts) when this runs in the bundle, else `ownUrl` (the caller's `import.meta.url`). A
 * `deno compile`d binary runs its workers on the whole bundle, as before: its module loader could
 * not load `blob:` workers (denoland/deno#29962, fixed in 2026) and a `data:` URL would name each
 * stack frame with the whole code.
 */
export function workerModuleUrl(name: string, ownUrl: string): string {
  if ((Deno.build as { standalone?: boolean }).standalone) return ownUrl;
  let url = urls.get(name);
  if (url !== undefined) return url;
  const embedded = (globalThis as Record<string, unknown>)[WORKER_CODE_GLOBAL] as
    | Record<string, unknown>
    | undefined;
  const packed = embedded?.[name];
  if (typeof packed !== "string") return ownUrl;
  const { Buffer } = builtin<NodeBuffer>("node:buffer");
  const code = builtin<Zlib>("node:zlib").inflateRawSync(Buffer.from(packed, "base64"));
  url = URL.createObjectURL(
    new Blob([code as Uint8Array<ArrayBuffer>], { type: "text/javascript" }),
  );
  urls.set(name, url);
  delete embedded![name];
  return url;
}

/**
 * The line that embeds `workers` (name → bundled code) in a bundle, for
 * {@linkcode workerModuleUrl}. A worker's code runs from a `blob:` URL, where `createRequire`
 * refuses `import.meta.url`; bundles require only Node built-ins, which resolve from any base.
 */
export function embedWorkersLine(workers: Record<string, string>): string {
  const { Buffer } = builtin<NodeBuffer>("node:buffer");
  const zlib = builtin<Zlib>("node:zlib");
  const entries = Object.entries(workers).map(([name, code]) => {
    const body = code.replaceAll(
      "__deno_internal_createRequire(import.meta.url)",
      '__deno_internal_createRequire("file:///")',
    );
    const packed = zlib.deflateRawSync(new TextEncoder().encode(body), { level: 9 });
    return `${JSON.stringify(name)}: ${JSON.stringify(Buffer.from(packed).toString("base64"))}`;
  });
  return `globalThis.${WORKER_CODE_GLOBAL} = { __proto__: null, ${entries.join(", ")} };\n`;
}
