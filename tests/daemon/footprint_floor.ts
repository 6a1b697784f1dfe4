/**
 * The RSS floor under the agent: what Deno itself costs with the agent's isolates and nothing of
 * ours in them. Each row is a fresh process with the agent's V8 flag: the main isolate alone,
 * then with an idle kernel-worker-like Worker, then also with a reader-like Worker (both started
 * by the main thread, as the agent does). The main isolate and the kernel-worker-like one open
 * libc through FFI and use WebCrypto and node:crypto once (as the agent's do: node:crypto brings
 * Deno's Node layer); the reader-like one only opens libc. Compare with `deno task bench:burst`'s
 * idle RSS: the difference is our code and data.
 *
 *   deno run -A tests/daemon/footprint_floor.ts [--runs 3]
 *
 * @module
 */

const FLAGS = "--v8-flags=--max-semi-space-size=2";

interface Row {
  rss: number;
  anon: number;
  file: number;
}

async function touch(full: boolean): Promise<void> {
  Deno.dlopen("libc.so.6", { getpid: { parameters: [], result: "i32" } });
  if (!full) return;
  const k = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
  ]);
  await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, k.privateKey, new Uint8Array(8));
  const { createHash } = await import("node:crypto");
  createHash("sha256").update("x").digest();
}

function statusMiB(): Row {
  const s = Deno.readTextFileSync("/proc/self/status");
  const g = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0) / 1024;
  return { rss: g("VmRSS"), anon: g("RssAnon"), file: g("RssFile") };
}

const self = globalThis as unknown as { name?: string; postMessage(m: unknown): void };

if ("WorkerGlobalScope" in globalThis) {
  await touch(self.name === "floor-kernel");
  self.postMessage("ready");
} else if (Deno.args[0] === "--child") {
  const workers = Number(Deno.args[1]);
  await touch(true);
  for (const name of ["floor-kernel", "floor-reader"].slice(0, workers)) {
    const w = new Worker(import.meta.url, { type: "module", name });
    await new Promise((r) => w.onmessage = r);
  }
  await new Promise((r) => setTimeout(r, 1500)); // let start-up garbage be collected
  console.log(JSON.stringify(statusMiB()));
  Deno.exit(0);
} else {
  const i = Deno.args.indexOf("--runs");
  const runs = i >= 0 ? Number(Deno.args[i + 1]) : 3;
  const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  console.log(`footprint floor (${FLAGS}), median of ${runs}; load average ${load()}`);
  const names = ["main isolate", "+ kernel worker", "+ kernel worker + reader"];
  for (let workers = 0; workers < names.length; workers++) {
    const rows: Row[] = [];
    for (let r = 0; r < runs; r++) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", FLAGS, import.meta.filename!, "--child", String(workers)],
        stdout: "piped",
      }).output();
      rows.push(JSON.parse(new TextDecoder().decode(out.stdout)) as Row);
    }
    const med = (k: keyof Row) => rows.map((x) => x[k]).sort((a, b) => a - b)[rows.length >> 1]!;
    console.log(
      `${names[workers]!.padEnd(26)} RSS ${med("rss").toFixed(1)} MiB ` +
        `(anon ${med("anon").toFixed(1)}, file ${med("file").toFixed(1)})`,
    );
  }
}
