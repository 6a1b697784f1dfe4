import assert from "node:assert/strict";
import {
  decodeEvent,
  fnv1a64,
  LPM_PATH,
  lpmKey,
  lpmTable,
  MAX_PATH,
  P,
  type PathEntry,
  pathKey,
  SIZES,
} from "./guard_layout.ts";

Deno.test("fnv1a64 matches the published FNV-1a 64 vectors", () => {
  const enc = new TextEncoder();
  assert.equal(fnv1a64(enc.encode("")), 0xcbf29ce484222325n);
  assert.equal(fnv1a64(enc.encode("a")), 0xaf63dc4c8601ec8cn);
  assert.equal(fnv1a64(enc.encode("foobar")), 0x85944171f73967e8n);
});

Deno.test("pathKey: a trailing / is a prefix, anything else exact; bad lengths are refused", () => {
  const v = (k: Uint8Array) => new DataView(k.buffer);
  const prefix = pathKey(7, "/etc/");
  assert.equal(v(prefix).getUint32(0, true), 7);
  assert.equal(v(prefix).getUint32(4, true), 5);
  const exact = pathKey(7, "/etc/shadow");
  assert.equal(v(exact).getUint32(4, true), (11 | 0x80000000) >>> 0);
  assert.equal(
    v(exact).getBigUint64(8, true),
    fnv1a64(new TextEncoder().encode("/etc/shadow")),
  );
  assert.throws(() => pathKey(1, ""), /1\.\.255 bytes/);
  assert.throws(() => pathKey(1, "/" + "a".repeat(MAX_PATH)), /Cannot key path/);
});

Deno.test("decodeEvent reads struct event's fields at the C offsets", () => {
  const b = new Uint8Array(SIZES.event);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, 123n, true);
  v.setBigUint64(8, 4567n, true);
  v.setUint32(16, 10, true);
  v.setUint32(20, 11, true);
  v.setUint32(24, 1000, true);
  v.setUint32(28, 3, true);
  v.setUint32(32, 1, true);
  v.setUint32(36, 2, true);
  v.setUint32(40, 1, true);
  v.setInt32(44, -5, true);
  v.setUint32(48, 9, true);
  b.set(new TextEncoder().encode("bash\0"), 56);
  b.set(new TextEncoder().encode("/usr/bin/dash\0"), 72);
  assert.deepEqual(decodeEvent(b), {
    tsNs: 123n,
    cgroupId: 4567n,
    pid: 10,
    tid: 11,
    uid: 1000,
    ruleset: 3,
    hook: "exec",
    outcome: "audited",
    rule: 1,
    arg: -5,
    ppid: 9,
    comm: "bash",
    path: "/usr/bin/dash",
  });
  assert.throws(() => decodeEvent(b.subarray(0, 10)), /10 bytes/);
});

Deno.test("lpmKey: bit length of rule set + path (an exact path with its NUL); too long: none", () => {
  const v = (k: Uint8Array) => new DataView(k.buffer);
  const exact = lpmKey(3, "/etc/shadow")!;
  assert.equal(exact.length, SIZES.lpmKey);
  assert.equal(v(exact).getUint32(0, true), 32 + 8 * 12);
  assert.equal(v(exact).getUint32(4, true), 3);
  assert.equal(new TextDecoder().decode(exact.subarray(8, 8 + 12)), "/etc/shadow\0");
  assert.equal(v(lpmKey(3, "/etc/")!).getUint32(0, true), 32 + 8 * 5);
  const longest = "/" + "a".repeat(LPM_PATH - 2); // + NUL = LPM_PATH bytes
  assert.ok(lpmKey(1, longest));
  assert.equal(lpmKey(1, longest + "a"), undefined);
  assert.ok(lpmKey(1, longest + "/"), "a prefix has no NUL");
  assert.equal(lpmKey(1, ""), undefined);
});

Deno.test("lpmTable: each entry carries the flags of the shorter entries it starts with", () => {
  const t = lpmTable([
    { path: "/", flags: P.EXEC_ALLOW },
    { path: "/etc/", flags: P.WRITE_DENY },
    { path: "/etc/shadow", flags: P.READ_DENY },
    { path: "/etc/ssh/", flags: P.READ_DENY },
    { path: "/etc/ssh/moduli", flags: P.EXEC_DENY },
    { path: "/etcetera", flags: P.EXEC_DENY }, // starts with "/etc" but not with "/etc/"
    { path: "/etc/shadow", flags: P.EXEC_DENY }, // a duplicate merges
  ]);
  assert.deepEqual(t.map((e) => [e.path, e.flags]), [
    ["/", P.EXEC_ALLOW],
    ["/etc/", P.EXEC_ALLOW | P.WRITE_DENY],
    ["/etc/shadow", P.EXEC_ALLOW | P.WRITE_DENY | P.READ_DENY | P.EXEC_DENY],
    ["/etc/ssh/", P.EXEC_ALLOW | P.WRITE_DENY | P.READ_DENY],
    ["/etc/ssh/moduli", P.EXEC_ALLOW | P.WRITE_DENY | P.READ_DENY | P.EXEC_DENY],
    ["/etcetera", P.EXEC_ALLOW | P.EXEC_DENY],
  ]);
  const binds = lpmTable([
    { path: "/opt/", flags: 0, bind: 4 },
    { path: "/opt/app/", flags: 0, bind: 5 },
    { path: "/opt/app/bin/x", flags: 0 },
    { path: "/opt/y", flags: 0 },
    { path: "/usr/bin/x", flags: 0, bind: 6 },
  ]);
  assert.deepEqual(
    binds.map((e) => [e.path, e.bind]),
    [["/opt/", 4], ["/opt/app/", 5], ["/opt/app/bin/x", 5], ["/opt/y", 4], ["/usr/bin/x", 6]],
    "the nearest binding wins, as the walk's deepest",
  );
  const long = "/d/" + "x".repeat(LPM_PATH);
  assert.deepEqual(lpmTable([{ path: long, flags: 1 }]), [], "too long for a key: walk only");
});

/** What the rules mean: every entry the path starts with (prefix) or equals (exact), OR-ed. */
function reference(entries: readonly PathEntry[], path: string) {
  let flags = 0, bind = 0, depth = -1;
  for (const e of entries) {
    if (e.path.endsWith("/") ? !path.startsWith(e.path) : path !== e.path) continue;
    flags |= e.flags;
    if (e.bind && e.path.length >= depth) [bind, depth] = [e.bind, e.path.length]; // last wins
  }
  return { flags, bind };
}

/**
 * The kernel's lookup as guard.bpf.c does it, on the bytes setPaths writes: one longest-prefix
 * match in `path_lpm` (the key is the bpf_d_path output with its NUL) when the path fits, else
 * the walk of its first MAX_PATH bytes over `paths`.
 */
function kernel(ruleset: number, entries: readonly PathEntry[], path: string) {
  const bytes = new TextEncoder().encode(path);
  const n = bytes.length + 1;
  if (n <= LPM_PATH) {
    const keyBits = 32 + 8 * n;
    const key = new Uint8Array(SIZES.lpmKey);
    new DataView(key.buffer).setUint32(4, ruleset, true);
    key.set(bytes, 8);
    let best: { bits: number; flags: number; bind: number } | undefined;
    for (const e of lpmTable(entries)) {
      const k = lpmKey(ruleset, e.path)!;
      const bits = new DataView(k.buffer).getUint32(0, true);
      if (bits > keyBits || (best && best.bits >= bits)) continue;
      if (k.subarray(4, 4 + bits / 8).every((b, i) => b === key[4 + i])) {
        best = { bits, flags: e.flags, bind: e.bind };
      }
    }
    return { flags: best?.flags ?? 0, bind: best?.bind ?? 0 };
  }
  const table = new Map<string, PathEntry>();
  for (const e of entries) table.set(pathKey(ruleset, e.path).join(","), e);
  let flags = 0, bind = 0, h = 0xcbf29ce484222325n;
  const look = (len: number) => {
    const k = new Uint8Array(SIZES.pathKey);
    const v = new DataView(k.buffer);
    v.setUint32(0, ruleset, true);
    v.setUint32(4, len >>> 0, true);
    v.setBigUint64(8, h, true);
    const e = table.get(k.join(","));
    if (e) {
      flags |= e.flags;
      if (e.bind) bind = e.bind;
    }
  };
  for (let i = 0; i < MAX_PATH; i++) {
    const c = i < bytes.length ? bytes[i]! : 0;
    if (!c) {
      look((i | 0x80000000) >>> 0);
      break;
    }
    h = ((h ^ BigInt(c)) * 0x100000001b3n) & 0xffffffffffffffffn;
    if (c === 0x2f) look(i + 1);
  }
  return { flags, bind };
}

Deno.test("one LPM lookup (or the long-path walk) gives what every matching entry OR-s to", () => {
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  const names = ["a", "b", "etc", "x".repeat(60), "y".repeat(120)];
  const randomPath = (maxDepth: number) => {
    let p = "";
    for (let d = rnd(maxDepth) + 1; d > 0; d--) p += "/" + names[rnd(names.length)];
    return p;
  };
  let long = 0, walked = 0;
  for (let round = 0; round < 200; round++) {
    const entries: PathEntry[] = [];
    for (let i = rnd(12); i >= 0; i--) {
      let path = randomPath(5);
      if (rnd(2)) path += "/";
      const bytes = new TextEncoder().encode(path).length;
      if (bytes > 255) continue; // what validation allows (MAX_RUNTIME_PATH)
      if (bytes + 1 > LPM_PATH) long++;
      entries.push({ path, flags: 1 << rnd(4), bind: rnd(3) === 0 ? 1 + rnd(9) : 0 });
    }
    // Near the key's limit: 248..255 bytes, exact or prefix.
    const base = randomPath(2).slice(0, 200) + "/";
    const near = base + "n".repeat(247 - base.length + rnd(8));
    entries.push({ path: near + (rnd(2) ? "/" : ""), flags: 1 << rnd(4), bind: rnd(2) });
    long++;
    const probes = [...entries.map((e) => e.path), ...entries.map((e) => e.path + "z")];
    // Deep below each entry: only the walk (or a long path's prefix) can judge these.
    for (const e of entries) probes.push(e.path + "/" + "q".repeat(rnd(300)));
    for (let i = 0; i < 20; i++) probes.push(randomPath(8));
    for (const p of probes) {
      if (p.endsWith("/")) continue; // d_path never ends in '/' (but for "/" itself)
      if (new TextEncoder().encode(p).length + 1 > LPM_PATH) walked++;
      assert.deepEqual(
        kernel(5, entries, p),
        reference(entries, p),
        `${p} in ${JSON.stringify(entries)}`,
      );
    }
  }
  assert.ok(long >= 200 && walked > 500, `long entries ${long}, walked paths ${walked}`);
});
