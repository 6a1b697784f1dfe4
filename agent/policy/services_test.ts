import assert from "node:assert/strict";
import { formatProblem } from "../errors.ts";
import { compileServices, hostnameKey, serviceHostnames } from "./services.ts";
import type { ServiceSource } from "./source.ts";

function svc(
  file: string,
  item: number,
  addresses: [string, number][],
  labels: string[],
): ServiceSource {
  return {
    file,
    item,
    line: 1,
    service: {
      addresses: addresses.map(([address, port], i) => ({ address, port, line: i + 2 })),
      labels,
    },
  };
}
const none = { addresses: new Map<string, string[]>() };

Deno.test("compileServices", async (t) => {
  await t.step("keys are IPv4 dotted and expanded IPv6 with the port", () => {
    const { payload, problems } = compileServices(
      [svc("s.yaml", 0, [["127.0.0.1", 8000], ["::1", 8000], ["FD00::5", 5432]], ["app=x"])],
      none,
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(payload, {
      "0000:0000:0000:0000:0000:0000:0000:0001:8000": { labels: ["app=x"] },
      "127.0.0.1:8000": { labels: ["app=x"] },
      "fd00:0000:0000:0000:0000:0000:0000:0005:5432": { labels: ["app=x"] },
    });
  });
  await t.step("hostnames use the resolutions given, case-insensitively", () => {
    const { payload, problems } = compileServices(
      [svc("s.yaml", 0, [["DB.local.", 5432]], ["app=db"])],
      { addresses: new Map([["db.local", ["10.0.0.5", "2001:db8::5"]]]) },
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(Object.keys(payload), [
      "10.0.0.5:5432",
      "2001:0db8:0000:0000:0000:0000:0000:0005:5432",
    ]);
  });
  await t.step("an unresolved hostname is a problem at its address", () => {
    const { problems } = compileServices(
      [svc("s.yaml", 3, [["10.0.0.1", 1], ["nowhere.test", 80]], ["a=b"])],
      { addresses: new Map(), errors: new Map([["nowhere.test", "NXDOMAIN"]]) },
    );
    assert.deepEqual(problems.map(formatProblem), [
      's.yaml:3: item 3: addresses[1].address: cannot resolve hostname "nowhere.test": NXDOMAIN',
    ]);
  });
  await t.step("entries for the same key merge, labels deduplicated and sorted", () => {
    const { payload } = compileServices([
      svc("b.yaml", 0, [["10.0.0.1", 80]], ["z=1", "a=1"]),
      svc("a.yaml", 0, [["10.0.0.1", 80]], ["a=1", "m=1"]),
    ], none);
    assert.deepEqual(payload, { "10.0.0.1:80": { labels: ["a=1", "m=1", "z=1"] } });
  });
  await t.step("more than 127 labels on one key after merging is a problem", () => {
    const labels = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => `l=${from + i}`);
    const ok = compileServices([
      svc("a.yaml", 0, [["10.0.0.1", 80]], labels(0, 100)),
      svc("b.yaml", 0, [["10.0.0.1", 80]], labels(50, 77)),
    ], none);
    assert.deepEqual(ok.problems, []);
    assert.equal(ok.payload["10.0.0.1:80"]!.labels.length, 127);
    const over = compileServices([
      svc("a.yaml", 0, [["10.0.0.1", 80]], labels(0, 100)),
      svc("b.yaml", 4, [["10.0.0.1", 80]], labels(50, 78)),
    ], none);
    assert.deepEqual(over.problems.map(formatProblem), [
      'b.yaml:1: item 4: labels: "10.0.0.1:80" has 128 distinct labels (merged with a.yaml item 0); the kernel allows at most 127 per address',
    ]);
  });
});

Deno.test("serviceHostnames lists names to resolve, not IP literals", () => {
  assert.deepEqual(
    serviceHostnames([
      svc("s.yaml", 0, [["b.local", 1], ["A.local", 2], ["10.0.0.1", 3], ["::1", 4], [
        "a.local.",
        5,
      ]], []),
    ]),
    ["a.local", "b.local"],
  );
  assert.equal(hostnameKey("Web.Example."), "web.example");
});
