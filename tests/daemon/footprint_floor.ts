/**
 * The RSS floor under the agent: what Deno itself costs with the agent's isolates and nothing of
 * ours in them. Each row is a fresh process with the agent's V8 flags (those of main.ts's `#!`
 * line): the main isolate alone, then with an idle kernel-worker-like Worker (started by the main
 * thread, as the agent does) whose one read of a FIFO waits on a thread of its blocking pool, as
 * the kernel worker's read of the device does (the agent's layout since the reader isolate went),
 * then also with a reader-like Worker (the layout before). The main isolate and the
 * kernel-worker-like one open libc through FFI and use WebCrypto and node:crypto once (as the
 * agent's do: node:crypto brings Deno's Node layer); the reader-like one only opens libc. Compare
 * with `deno task bench:burst`'s idle RSS: the difference is our code and data.
 *
 *   deno run -A tests/daemon/footprint_floor.ts [--runs 3]
 *
 * @module
 */

const FLAGS = /--v8-flags=\S+/.exec(
  Deno.readTextFileSync(new URL("../../main.ts", import.meta.url)).split("\n", 1)[0]!,
)?.[0] ?? "--v8-flags=";

interface Row {
  rss: number;
  anon: number;
  file: number;
  /** Used (committed) V8 heap MiB per isolate: main first. */
  heaps?: string;
}

function heapMiB(): string {
  const m = Deno.memoryUsage();
  return `${(m.heapUsed / 1048576).toFixed(1)} (${(m.heapTotal / 1048576).toFixed(1)})`;
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

/** One read pending on a FIFO, on a thread of this isolate's blocking pool (as the device's). */
async function pendingRead(): Promise<void> {
  const fifo = `${Deno.env.get("TMPDIR") ?? "/tmp"}/camblet-floor-${Deno.pid}.fifo`;
  await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const file = await Deno.open(fifo, { read: true, write: true });
  await Deno.remove(fifo);
  file.read(new Uint8Array(1024 * 1024)).catch(() => {});
}

if ("WorkerGlobalScope" in globalThis) {
  await touch(self.name === "floor-kernel");
  if (self.name === "floor-kernel") await pendingRead();
  const scope = globalThis as unknown as { onmessage: (() => void) | null };
  scope.onmessage = () => self.postMessage(heapMiB());
  self.postMessage("ready");
} else if (Deno.args[0] === "--child") {
  const workers = Number(Deno.args[1]);
  await touch(true);
  const started: Worker[] = [];
  for (const name of ["floor-kernel", "floor-reader"].slice(0, workers)) {
    const w = new Worker(import.meta.url, { type: "module", name });
    await new Promise((r) => w.onmessage = r);
    started.push(w);
  }
  await new Promise((r) => setTimeout(r, 1500)); // let start-up garbage be collected
  const heaps = [heapMiB()];
  for (const w of started) {
    heaps.push(
      await new Promise<string>((r) => {
        w.onmessage = (e) => r(e.data);
        w.postMessage("mem");
      }),
    );
  }
  console.log(JSON.stringify({ ...statusMiB(), heaps: heaps.join(", ") }));
  Deno.exit(0);
} else {
  const i = Deno.args.indexOf("--runs");
  const runs = i >= 0 ? Number(Deno.args[i + 1]) : 3;
  const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  console.log(
    `footprint floor (${FLAGS}), the run with the median RSS of ${runs}; load average ${load()}`,
  );
  const names = [
    "main isolate",
    "+ kernel worker (the agent)",
    "+ kernel worker + reader (before)",
  ];
  for (let workers = 0; workers < names.length; workers++) {
    const rows: Row[] = [];
    for (let r = 0; r < runs; r++) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", FLAGS, import.meta.filename!, "--child", String(workers)],
        stdout: "piped",
      }).output();
      rows.push(JSON.parse(new TextDecoder().decode(out.stdout)) as Row);
    }
    const order = rows.map((_, i) => i).sort((a, b) => rows[a]!.rss - rows[b]!.rss);
    const mid = rows[order[rows.length >> 1]!]!;
    console.log(
      `${names[workers]!.padEnd(34)} RSS ${mid.rss.toFixed(1)} MiB ` +
        `(anon ${mid.anon.toFixed(1)}, file ${mid.file.toFixed(1)}); heap per isolate, used ` +
        `(committed) MiB: ${mid.heaps}`,
    );
  }
}
