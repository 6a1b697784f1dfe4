import assert from "node:assert/strict";
import { PayloadSync, type Pusher } from "./payload_sync.ts";
import { PayloadTooLargeError } from "../../driver/transport.ts";
import type { KernelPayloads } from "../../driver/payloads.ts";

/** Records pushes; refuses lines over `limit` bytes the way the kernel link does. */
function recorder(limit = Infinity): Pusher & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    push: (line, what) => {
      if (line.length > limit) {
        return Promise.reject(new PayloadTooLargeError(what, line.length, limit));
      }
      lines.push(line);
      return Promise.resolve();
    },
  };
}

const payloads = (n: number, size = 10): KernelPayloads => ({
  load_config: { trust_domain: "acme.test" },
  load_sd_info: { "127.0.0.1:8000": { labels: ["app:label=web"] } },
  load_policies: {
    policies: Array.from({ length: n }, (_, i) => ({
      position: i,
      id: `p${i}`,
      selectors: [{ [`x=${"y".repeat(size)}`]: true as const }],
      certificate: { workloadID: `w${i}` },
    })),
  },
});
const origin = {
  provenance: { p0: { file: "a.yaml", item: 0 }, p1: { file: "big.yaml", item: 0 } },
  servicesFiles: ["s.yaml"],
};
const cmd = (l: string) => JSON.parse(l).command as string;

Deno.test("startup pushes in the kernel's order; reloads push only what changed", async () => {
  const r = recorder();
  const sync = new PayloadSync(r);
  await sync.pushInitial(payloads(1), origin);
  assert.deepEqual(r.lines.map(cmd), [
    "load_config",
    "manage_trace_requests",
    "load_sd_info",
    "load_policies",
  ]);
  assert.deepEqual(await sync.pushChanged(payloads(1), origin), []);
  assert.deepEqual(await sync.pushChanged(payloads(2), origin), ["load_policies"]);
  assert.equal(r.lines.length, 5);
});

Deno.test("a payload too big for the kernel names the files that made it big", async () => {
  const sync = new PayloadSync(recorder(5000));
  const p = payloads(2);
  p.load_policies.policies[1]!.selectors = [{ ["x=" + "y".repeat(6000)]: true }];
  await assert.rejects(sync.pushInitial(p, origin), (e: Error) => {
    assert.ok(e instanceof PayloadTooLargeError);
    assert.match(
      e.message,
      /^Cannot push load_policies \(largest parts: big\.yaml \(7\.\d KiB\), a\.yaml \(\d+ B\)\): the message is/,
    );
    return true;
  });
});
