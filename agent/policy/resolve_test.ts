import assert from "node:assert/strict";
import { startFakeDns } from "../../tests/fakes/dns_server.ts";
import { parseHosts, resolveHostnames, systemResolver } from "./resolve.ts";

async function tempHosts(text: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".hosts" });
  await Deno.writeTextFile(path, text);
  return path;
}

Deno.test("parseHosts", () => {
  const hosts = parseHosts(
    "# comment\n127.0.0.1 localhost\n10.0.0.5\tdb DB.local # primary\n10.0.0.6 db\nbogus x\n::1 ip6-localhost\n",
  );
  assert.deepEqual(hosts.get("db"), ["10.0.0.5", "10.0.0.6"]);
  assert.deepEqual(hosts.get("db.local"), ["10.0.0.5"]);
  assert.deepEqual(hosts.get("ip6-localhost"), ["::1"]);
  assert.equal(hosts.get("x"), undefined);
});

Deno.test("systemResolver", async (t) => {
  const dns = await startFakeDns({
    "web.test": ["192.0.2.10", "2001:db8::10"],
    "v4only.test": ["192.0.2.11"],
    "db": ["192.0.2.99"],
  });
  const hostsFile = await tempHosts("10.0.0.5 db\n");
  const viaFake = (name: string, type: "A" | "AAAA", opts: { signal: AbortSignal }) =>
    Deno.resolveDns(name, type, { ...opts, nameServer: { ipAddr: "127.0.0.1", port: dns.port } });
  try {
    const lookup = systemResolver({ hostsFile, resolveDns: viaFake });
    await t.step("localhost is 127.0.0.1 and ::1 without asking anyone", async () => {
      assert.deepEqual(await lookup("LocalHost."), ["127.0.0.1", "::1"]);
      assert.deepEqual(dns.queries, []);
    });
    await t.step("the hosts file wins over DNS", async () => {
      assert.deepEqual(await lookup("db"), ["10.0.0.5"]);
      assert.deepEqual(dns.queries, []);
    });
    await t.step("DNS gives A and AAAA records", async () => {
      assert.deepEqual(await lookup("web.test"), ["192.0.2.10", "2001:db8::10"]);
      assert.deepEqual(dns.queries.sort(), ["web.test/A", "web.test/AAAA"]);
    });
    await t.step("a name without AAAA records still resolves", async () => {
      assert.deepEqual(await lookup("v4only.test"), ["192.0.2.11"]);
    });
    await t.step("resolveHostnames records unknown names with a reason", async () => {
      const r = await resolveHostnames(["web.test", "missing.test"], lookup);
      assert.deepEqual([...r.addresses.keys()], ["web.test"]);
      assert.match(r.errors!.get("missing.test")!, /no A or AAAA records|not found/i);
    });
    await t.step("a missing hosts file counts as empty", async () => {
      const other = systemResolver({ hostsFile: "/nonexistent/hosts", resolveDns: viaFake });
      assert.deepEqual(await other("db"), ["192.0.2.99"]);
    });
  } finally {
    await dns.close();
    await Deno.remove(hostsFile);
  }
});

Deno.test("a DNS query that hangs times out with a reason", async () => {
  const hostsFile = await tempHosts("");
  try {
    const lookup = systemResolver({
      hostsFile,
      timeoutMs: 20,
      resolveDns: (_name, _type, { signal }) =>
        new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
    });
    const r = await resolveHostnames(["slow.test"], lookup);
    assert.match(r.errors!.get("slow.test")!, /timed out after 20 ms/);
  } finally {
    await Deno.remove(hostsFile);
  }
});
