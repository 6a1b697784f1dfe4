/**
 * Benchmark helpers run inside the test namespaces: an echo server (`echo PORT`) and two load
 * generators printing one JSON line: `conns HOST PORT CONCURRENCY SECONDS` (connect, 1-byte
 * echo, close: new connections per second) and `rr HOST PORT COUNT SIZE` (request/response on
 * one connection: latency percentiles). Bounded by time or count.
 *
 * @module
 */

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

async function echo(port: number): Promise<void> {
  const l = Deno.listen({ hostname: "0.0.0.0", port });
  console.log(`listening ${port}`);
  for await (const c of l) {
    c.setNoDelay(true);
    (async () => {
      const b = new Uint8Array(65536);
      try {
        for (;;) {
          const n = await c.read(b);
          if (n === null) break;
          let off = 0;
          while (off < n) off += await c.write(b.subarray(off, n));
        }
      } catch { /* reset */ }
      try {
        c.close();
      } catch { /* closed */ }
    })();
  }
}

async function conns(host: string, port: number, conc: number, secs: number): Promise<void> {
  const end = performance.now() + secs * 1000;
  const lat: number[] = [];
  let errs = 0;
  let firstError = "";
  const msg = new Uint8Array([120]);
  const worker = async () => {
    const buf = new Uint8Array(16);
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const c = await Deno.connect({ hostname: host, port });
        c.setNoDelay(true);
        await c.write(msg);
        const n = await c.read(buf);
        c.close();
        if (n !== 1) throw new Error(`read ${n}`);
        lat.push(performance.now() - t0);
      } catch (e) {
        if (errs++ === 0) firstError = String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  lat.sort((a, b) => a - b);
  console.log(JSON.stringify({
    conns: lat.length,
    errors: errs,
    firstError,
    perSecond: lat.length / secs,
    p50Ms: pct(lat, 0.5),
    p99Ms: pct(lat, 0.99),
  }));
}

async function rr(host: string, port: number, count: number, size: number): Promise<void> {
  const c = await Deno.connect({ hostname: host, port });
  c.setNoDelay(true);
  const msg = new Uint8Array(size).fill(97);
  const buf = new Uint8Array(size);
  const lat: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await c.write(msg);
    let got = 0;
    while (got < size) {
      const n = await c.read(buf.subarray(got));
      if (n === null) throw new Error("closed");
      got += n;
    }
    if (i >= 10) lat.push(performance.now() - t0); // warm-up excluded
  }
  c.close();
  lat.sort((a, b) => a - b);
  console.log(JSON.stringify({ count: lat.length, p50Ms: pct(lat, 0.5), p99Ms: pct(lat, 0.99) }));
}

if (import.meta.main) {
  const [cmd, ...a] = Deno.args;
  if (cmd === "echo") await echo(Number(a[0]));
  else if (cmd === "conns") await conns(a[0]!, Number(a[1]), Number(a[2]), Number(a[3]));
  else if (cmd === "rr") await rr(a[0]!, Number(a[1]), Number(a[2]), Number(a[3]));
  else throw new Error(`unknown command ${cmd}`);
}
