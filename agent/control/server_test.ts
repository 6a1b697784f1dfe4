import assert from "node:assert/strict";
import { join } from "node:path";
import { configure, reset } from "@logtape/logtape";
import { TraceHub } from "./trace_hub.ts";
import { ControlClient } from "./client.ts";
import { type ControlSources, serveControlSocket, serveMetricsTcp } from "./server.ts";

function sources(): ControlSources {
  return {
    ready: () => ({ ready: true }),
    status: () => Promise.resolve({ ok: true }),
    metrics: () => Promise.resolve("up 1\n"),
    trace: new TraceHub(() => Promise.resolve()),
  };
}

async function healthz(path: string): Promise<string> {
  const c = new ControlClient(path);
  try {
    return await (await c.get("/healthz")).text();
  } finally {
    c.close();
  }
}

const mode = (p: string) => Deno.statSync(p).mode! & 0o7777;

Deno.test("control socket path", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "camblet-ctl-" });
  try {
    await t.step("a 1777 parent keeps its mode; the socket is 0600 and answers", async () => {
      const dir = join(root, "tmp-like");
      await Deno.mkdir(dir);
      await Deno.chmod(dir, 0o1777);
      const path = join(dir, "agent.sock");
      const l = await serveControlSocket(path, sources());
      try {
        assert.equal(mode(dir), 0o1777);
        assert.equal(mode(path), 0o600);
        assert.equal(await healthz(path), "ok\n");
        // Nothing of ours is left beside the socket.
        assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["agent.sock"]);
      } finally {
        await l.close();
      }
      assert.equal(mode(dir), 0o1777);
      assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
    });

    await t.step("a regular file at the socket path is kept, with a clear error", async () => {
      const dir = join(root, "file-there");
      await Deno.mkdir(dir, { mode: 0o700 });
      const path = join(dir, "agent.sock");
      await Deno.writeTextFile(path, "precious\n");
      await assert.rejects(
        () => serveControlSocket(path, sources()),
        (e: Error) => {
          assert.match(e.message, /Cannot serve the control socket ".*agent\.sock"/);
          assert.match(e.message, /a regular file is there/);
          return true;
        },
      );
      assert.equal(await Deno.readTextFile(path), "precious\n");
    });

    await t.step("a directory or a link at the socket path is kept too", async () => {
      const dir = join(root, "other-there");
      await Deno.mkdir(dir, { mode: 0o700 });
      const path = join(dir, "agent.sock");
      const target = join(dir, "target");
      await Deno.writeTextFile(target, "x");
      await Deno.symlink(target, path);
      await assert.rejects(() => serveControlSocket(path, sources()), /a symbolic link is there/);
      assert.equal(Deno.lstatSync(path).isSymlink, true);
      assert.equal(await Deno.readTextFile(target), "x");
    });

    await t.step("a stale socket of ours is replaced; a live one is refused", async () => {
      const dir = join(root, "stale");
      await Deno.mkdir(dir, { mode: 0o700 });
      const path = join(dir, "agent.sock");
      // A killed agent leaves its socket file behind: a process that binds and exits does too.
      const py = new Deno.Command("python3", {
        args: ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", path],
      });
      assert.equal((await py.output()).code, 0);
      assert.equal(Deno.lstatSync(path).isSocket, true);
      const l = await serveControlSocket(path, sources());
      try {
        assert.equal(await healthz(path), "ok\n");
        await assert.rejects(
          () => serveControlSocket(path, sources()),
          /another agent is answering on it/,
        );
        assert.equal(await healthz(path), "ok\n");
      } finally {
        await l.close();
      }
    });

    await t.step("a missing directory is created 0700", async () => {
      const dir = join(root, "new", "camblet");
      const path = join(dir, "agent.sock");
      const l = await serveControlSocket(path, sources());
      try {
        assert.equal(mode(dir), 0o700);
        assert.equal(mode(path), 0o600);
      } finally {
        await l.close();
      }
    });

    await t.step("a parent that is not ours, or writable by others, is refused as is", async () => {
      const theirs = join(root, "theirs");
      await Deno.mkdir(theirs, { mode: 0o755 });
      await Deno.chown(theirs, 65534, 65534);
      await assert.rejects(
        () => serveControlSocket(join(theirs, "agent.sock"), sources()),
        /directory ".*theirs" is owned by uid 65534/,
      );
      assert.equal(mode(theirs), 0o755);
      assert.equal(Deno.statSync(theirs).uid, 65534);

      const open = join(root, "open");
      await Deno.mkdir(open);
      await Deno.chmod(open, 0o777);
      await assert.rejects(
        () => serveControlSocket(join(open, "agent.sock"), sources()),
        /directory ".*open" is writable by group or others without the sticky bit \(mode 0777\)/,
      );
      assert.equal(mode(open), 0o777);
      assert.deepEqual([...Deno.readDirSync(open)], []);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("metrics on TCP: a port alone listens on loopback only, and says so", async () => {
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r) => lines.push(`${r.level} ${r.message.join("")}`) },
    loggers: [
      { category: ["camblet"], lowestLevel: "info", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["mem"] },
    ],
  });
  try {
    const l = await serveMetricsTcp(":0", sources());
    try {
      assert.match(l.address, /^tcp:127\.0\.0\.1:\d+$/);
    } finally {
      await l.close();
    }
    assert.match(lines.join("\n"), /^info Serving metrics on loopback only: no host given/m);
    const all = await serveMetricsTcp("0.0.0.0:0", sources());
    try {
      assert.match(all.address, /^tcp:0\.0\.0\.0:\d+$/);
    } finally {
      await all.close();
    }
    assert.match(
      lines.join("\n"),
      /^warning Serving metrics without authentication beyond loopback/m,
    );
  } finally {
    await reset();
  }
});
