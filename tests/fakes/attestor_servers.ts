/**
 * Stand-ins for daemons that cannot run on the test machine, serving their DOCUMENTED API
 * responses: the Docker Engine API over a Unix socket, the kubelet's `/pods` over TLS, and cloud
 * metadata services over loopback HTTP. Plus a helper that starts a real container when a Docker
 * daemon is reachable.
 *
 * @module
 */

/** A running fake server. */
export interface FakeServer {
  /** Socket path or base URL. */
  address: string;
  /** Requests seen (method + path), for assertions. */
  requests: { method: string; path: string; headers: Headers }[];
  close(): Promise<void>;
}

type Handler = (req: Request, url: URL) => Response | Promise<Response>;

function record(requests: FakeServer["requests"], handler: Handler) {
  return (req: Request) => {
    const url = new URL(req.url);
    requests.push({ method: req.method, path: url.pathname + url.search, headers: req.headers });
    return handler(req, url);
  };
}

/** Serves `handler` on a fresh Unix socket. */
export async function serveUnix(handler: Handler): Promise<FakeServer> {
  const dir = await Deno.makeTempDir({ prefix: "camblet-sock-" });
  const path = `${dir}/api.sock`;
  const requests: FakeServer["requests"] = [];
  const server = Deno.serve({ transport: "unix", path, onListen() {} }, record(requests, handler));
  return {
    address: path,
    requests,
    async close() {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Serves `handler` on loopback TCP, optionally with TLS. */
export function serveTcp(handler: Handler, tls?: { cert: string; key: string }): FakeServer {
  const requests: FakeServer["requests"] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, ...(tls ?? {}) },
    record(requests, handler),
  );
  return {
    address: `${tls ? "https" : "http"}://127.0.0.1:${server.addr.port}`,
    requests,
    close: () => server.shutdown(),
  };
}

/** JSON response. */
export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/**
 * ContainerInspect as the Docker Engine API reference documents it (`GET /containers/{id}/json`,
 * example response, trimmed to the fields a client reads).
 */
export function documentedContainerInspect(id: string): Record<string, unknown> {
  return {
    AppArmorProfile: "",
    Args: ["-c", "exit 9"],
    Config: {
      AttachStderr: true,
      AttachStdin: false,
      AttachStdout: true,
      Cmd: ["/bin/sh", "-c", "exit 9"],
      Domainname: "",
      Env: [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "API_TOKEN=hunter2",
        "APP_ENV=prod",
      ],
      Hostname: "ba033ac44011",
      Image: "ubuntu",
      Labels: {
        "com.example.vendor": "Acme",
        "com.example.license": "GPL",
        "com.example.version": "1.0",
      },
      User: "",
      WorkingDir: "",
    },
    Created: "2015-01-06T15:47:31.485331387Z",
    Driver: "overlay2",
    HostConfig: {
      NetworkMode: "bridge",
      PortBindings: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "49153" }], "443/tcp": null },
      RestartPolicy: { MaximumRetryCount: 2, Name: "on-failure" },
    },
    HostnamePath:
      "/var/lib/docker/containers/ba033ac4401106a3b513bc9d639eee123ad78ca3616b921167cd74b20e25ed39/hostname",
    Id: id,
    Image: "04c5d3b7b0656168630d3ba35d8889bd0e9caafcaeb3004d2bfbc47e7c5d35d2",
    Name: "/boring_euclid",
    NetworkSettings: { Bridge: "", IPAddress: "172.17.0.2" },
    Path: "/bin/sh",
    State: { Running: true, Pid: 1234, Status: "running" },
  };
}

/** True when a Docker daemon answers on `socket`. */
export async function dockerAvailable(socket = "/var/run/docker.sock"): Promise<boolean> {
  try {
    const c = Deno.createHttpClient({ proxy: { transport: "unix", path: socket } });
    try {
      const r = await fetch("http://localhost/_ping", {
        client: c,
        signal: AbortSignal.timeout(1000),
      });
      await r.body?.cancel();
      return r.ok;
    } finally {
      c.close();
    }
  } catch {
    return false;
  }
}

/** Runs a command and returns stdout, throwing with stderr on failure. */
export async function run(cmd: string, args: string[], stdin?: Uint8Array): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: ${dec.decode(out.stderr).trim()}`);
  return dec.decode(out.stdout).trim();
}

/**
 * A minimal image (`/bin/sleep` and its shared libraries) imported into Docker as
 * `camblet-test/sleep:1`, so no registry is needed.
 */
export async function ensureDockerTestImage(docker = "docker"): Promise<string> {
  const image = "camblet-test/sleep:1";
  try {
    await run(docker, ["image", "inspect", image]);
    return image;
  } catch {
    // build it
  }
  const root = await makeSleepRootfs();
  try {
    const tar = await new Deno.Command("tar", { args: ["-C", root, "-c", "."], stdout: "piped" })
      .output();
    await run(docker, ["import", "--change", 'CMD ["/bin/sleep","300"]', "-", image], tar.stdout);
    return image;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** A root filesystem holding `/bin/sleep` and its shared libraries; the caller removes it. */
export async function makeSleepRootfs(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "camblet-rootfs-" });
  const libs = (await run("ldd", ["/bin/sleep"])).split("\n")
    .map((l) => /(\/\S+)/.exec(l.includes("=>") ? l.split("=>")[1]! : l)?.[1]).filter((
      x,
    ): x is string => !!x);
  for (const f of ["/bin/sleep", ...libs]) {
    const real = await Deno.realPath(f);
    await Deno.mkdir(`${root}${f.slice(0, f.lastIndexOf("/"))}`, { recursive: true });
    await Deno.copyFile(real, `${root}${f}`);
  }
  return root;
}

/** True when something accepts connections on the Unix socket `path`. */
export async function socketAnswers(path: string): Promise<boolean> {
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
    return true;
  } catch {
    return false;
  }
}
