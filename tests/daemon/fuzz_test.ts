/**
 * Hostile kernel input against the real agent (issue "Hostile input"): 5,000 seeded lines from
 * tests/fakes/kernel_fuzz.ts, prototype keys among them in every field, sent through the kernel
 * emulator with valid requests interleaved. Every line with a recoverable id is answered in time,
 * no csr_sign is answered with `error`, the agent stays up, the valid requests are answered as
 * before, the drops are counted by reason, the log does not flood, and RSS comes back.
 *
 * `CAMBLET_FUZZ_REPORT=1` prints the counts instead of asserting (with `CAMBLET_FUZZ_ROOT=<dir>`
 * it runs the agent of another checkout: the before/after numbers of the issue note).
 */
import { exclusive } from "../_exclusive.ts";
import assert from "node:assert/strict";
import { ControlClient } from "../../agent/control/client.ts";
import { KernelEmulator, type RequestResult } from "../../driver/emulator/kernel_emulator.ts";
import { taskOf } from "../../driver/emulator/tasks.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { byKind, fuzzCases, isFuzzNoise, runFuzz, summarise } from "../fakes/kernel_fuzz.ts";
import { until } from "../fakes/until.ts";

const SEED = Number(Deno.env.get("CAMBLET_FUZZ_SEED") ?? 1307);
const LINES = Number(Deno.env.get("CAMBLET_FUZZ_LINES") ?? 5000);
const PER_SECOND = Number(Deno.env.get("CAMBLET_FUZZ_RATE") ?? 250);
const REPORT = Deno.env.get("CAMBLET_FUZZ_REPORT") === "1";
const ROOT = Deno.env.get("CAMBLET_FUZZ_ROOT");
const DENO_ARGS = (Deno.env.get("CAMBLET_FUZZ_DENO_ARGS") ?? "").split(" ").filter(Boolean);
/** `K=V K=V`: extra environment of the agent (e.g. glibc malloc tunables). */
const AGENT_ENV = Object.fromEntries(
  (Deno.env.get("CAMBLET_FUZZ_AGENT_ENV") ?? "").split(" ").filter(Boolean).map((
    kv,
  ) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);
const say = (...a: unknown[]) => REPORT && console.error(new Date().toISOString(), ...a);

function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return Number(m?.[1] ?? 0) * 1024;
}

Deno.test("5,000 hostile kernel lines: every recoverable id answered in time, agent stays up", () =>
  exclusive(async () => {
    const emu = await KernelEmulator.open();
    const python = new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import time; time.sleep(600)"],
    }).spawn();
    const agent = await startAgent(emu, {
      trustDomain: "acme.test",
      ...(DENO_ARGS.length ? { denoArgs: DENO_ARGS } : {}),
      env: AGENT_ENV,
      ...(ROOT ? { root: ROOT } : {}),
    });
    const control = new ControlClient(agent.socket);
    let exited = false;
    agent.status.then(() => exited = true);
    try {
      await until(
        () => Deno.readTextFileSync(`/proc/${python.pid}/comm`).trim() === "python3",
        "python3 to start",
      );
      const task = taskOf(python.pid);
      const valid: RequestResult[] = [];
      const validRound = async () => {
        const [a, c] = await Promise.all([
          emu.augment(task),
          emu.csrSign("spiffe://acme.test/web", { ttl: "3600s", task }),
        ]);
        valid.push(a, c);
        return [a, c] as const;
      };
      // Steady state first: the same valid traffic before and after the abuse.
      for (let i = 0; i < 40; i++) await validRound();
      await new Promise((r) => setTimeout(r, 1000));
      const rssCold = rssBytes(agent.child.pid);
      const csrs = await Promise.all(
        ["web", "curl", "x/y", "constructor", "__proto__"].map((w) =>
          emu.csrs.csr(`spiffe://acme.test/${w}`, w === "web" ? ["web.acme.test"] : [])
        ),
      );
      // The steady level is that of an agent that has met each kind of line once (code loaded,
      // compiled, refusal signer ready): a short fuzz of another seed, then valid traffic.
      const warmCases = fuzzCases(SEED + 1, 400, { csrs, spki: emu.csrs.spki })
        .filter((c) => c.kind !== "oversized");
      await runFuzz(emu, warmCases, { perSecond: PER_SECOND });
      for (let i = 0; i < 40; i++) await validRound();
      await new Promise((r) => setTimeout(r, 3000));
      const rssBefore = exited ? 0 : rssBytes(agent.child.pid);
      say("rss cold", rssCold >> 20, "warm", rssBefore >> 20);
      valid.length = 0;
      // CAMBLET_FUZZ_SKIP=kind,kind: leave out mutations (a before-run on code one of them kills).
      const skip = new Set((Deno.env.get("CAMBLET_FUZZ_SKIP") ?? "").split(",").filter(Boolean));
      const cases = fuzzCases(SEED, LINES, { csrs, spki: emu.csrs.spki })
        .filter((c) => !skip.has(c.kind));
      const started = performance.now();
      const interleaved: Promise<unknown>[] = [];
      const outcomes = await runFuzz(emu, cases, {
        perSecond: PER_SECOND,
        onTick: (i) => {
          if (i % 500 === 0) say("sent", i);
          if (i % 250 === 0) interleaved.push(validRound());
        },
      });
      await Promise.all(interleaved);
      // CAMBLET_FUZZ_ROUNDS=n (report mode): the same abuse again, RSS after each (leak or peak?).
      for (let round = 2; round <= Number(Deno.env.get("CAMBLET_FUZZ_ROUNDS") ?? 1); round++) {
        const st = Deno.readTextFileSync(`/proc/${agent.child.pid}/status`);
        say(
          "rss after round",
          round - 1,
          rssBytes(agent.child.pid) >> 20,
          /Threads:\s+\d+/.exec(st)?.[0],
          /RssAnon:\s+\d+ kB/.exec(st)?.[0],
          /RssFile:\s+\d+ kB/.exec(st)?.[0],
        );
        await runFuzz(emu, cases, { perSecond: PER_SECOND });
      }
      const fuzzMs = performance.now() - started;
      say("fuzzed", fuzzMs, "exited", exited);

      for (let i = 0; i < 40; i++) await validRound();
      say("valid after");
      // CAMBLET_FUZZ_IDLE_MS (report mode): how RSS falls while the agent idles after the abuse.
      for (let t = 0; t < Number(Deno.env.get("CAMBLET_FUZZ_IDLE_MS") ?? 0); t += 10_000) {
        say("idle", t / 1000, "s: rss", rssBytes(agent.child.pid) >> 20);
        await new Promise((r) => setTimeout(r, 10_000));
      }
      // The abuse has stopped: V8 gives memory back once the agent idles (its memory reducer runs
      // some 10-20 s later). RSS must come back to what it was before any hostile line.
      const idleStart = performance.now();
      let rssAfter = exited ? 0 : rssBytes(agent.child.pid);
      const rssPeak = rssAfter;
      while (!exited && rssAfter > rssCold * 1.2 && performance.now() - idleStart < 45_000) {
        await new Promise((r) => setTimeout(r, 1000));
        rssAfter = rssBytes(agent.child.pid);
      }
      const backMs = performance.now() - idleStart;
      const metrics = exited ? "" : await control.get("/metrics", AbortSignal.timeout(5000)).then(
        (r) => r.text(),
        (e) => `(no metrics: ${e.message})`,
      );
      say("metrics");
      const malformed = metrics.split("\n").filter((l) => l.startsWith("camblet_kernel_malformed"));
      const logLines = agent.log().split("\n");
      const malformedLogs = logLines.filter((l) => /alformed|oversized/i.test(l));

      const summary = summarise(outcomes);
      const failures = outcomes.filter((o) => o.c.id !== undefined && o.result !== "answered");
      const validBad = valid.filter((r, i) =>
        i % 2 === 0
          ? r.outcome !== "answered" || !r.labels?.includes("process:name=python3")
          : r.outcome !== "issued"
      );
      const problems = emu.problems().filter((p) => !isFuzzNoise(p, [...warmCases, ...cases]));
      if (REPORT) {
        console.log(JSON.stringify({ seed: SEED, lines: LINES, perSecond: PER_SECOND, fuzzMs }));
        console.log("summary", JSON.stringify(summary));
        for (const [kind, m] of byKind(outcomes)) {
          console.log(kind.padEnd(24), JSON.stringify(Object.fromEntries(m)));
        }
        console.log(
          "first failures",
          failures.slice(0, 5).map((f) => ({
            kind: f.c.kind,
            result: f.result,
            problem: f.problem,
            head: new TextDecoder().decode(f.c.bytes.subarray(0, 160)),
          })),
        );
        const lat = valid.map((r) => r.latencyMs).sort((a, b) => a - b);
        console.log(
          "valid",
          valid.length,
          "bad",
          validBad.length,
          "p50",
          lat[lat.length >> 1],
          "p99",
          lat[Math.floor(lat.length * 0.99)],
        );
        console.log(
          "rss MB cold",
          rssCold >> 20,
          "warm",
          rssBefore >> 20,
          "end of fuzz",
          rssPeak >> 20,
          "after",
          rssAfter >> 20,
          "back after ms",
          Math.round(backMs),
        );
        console.log("exited", exited);
        if (DENO_ARGS.some((a) => a.includes("trace-gc"))) {
          const gc = logLines.filter((l) => /Mark-Compact|Mark-sweep/i.test(l));
          console.log(
            "gc (last of each isolate)",
            [...new Map(gc.map((l) => [/\[\d+:(0x[0-9a-f]+)\]/.exec(l)?.[1], l])).values()].join(
              "\n",
            ),
          );
        }
        console.log("malformed metrics", malformed.join("\n"));
        console.log(
          "malformed log lines",
          malformedLogs.length,
          "emu problems",
          problems.length,
          problems.slice(0, 5),
        );
        return;
      }
      assert.equal(exited, false, `the agent exited:\n${agent.log().slice(-4000)}`);
      assert.deepEqual(
        failures.map((f) => `${f.c.kind}: ${f.result} ${f.problem ?? ""}`).slice(0, 20),
        [],
        JSON.stringify(summary),
      );
      assert.ok(summary["with_id"]! > LINES / 2, JSON.stringify(summary));
      assert.equal(validBad.length, 0, JSON.stringify(validBad.slice(0, 3)));
      assert.deepEqual(problems, []);
      assert.ok(fuzzMs < 120_000, `${fuzzMs} ms`);
      // Counted by reason; a prototype key among the commands did not become a metrics series.
      assert.ok(
        malformed.some((l) => /camblet_kernel_malformed_total\{reason="not_json"\} \d+/.test(l)),
        malformed.join("\n"),
      );
      assert.ok(!/command="(constructor|__proto__|toString|hasOwnProperty|valueOf)"/.test(metrics));
      // Once per reason per minute, not once per line.
      assert.ok(
        malformedLogs.length < 60,
        `${malformedLogs.length} log lines:\n${malformedLogs.slice(0, 5).join("\n")}`,
      );
      assert.ok(
        rssAfter <= rssCold * 1.2,
        `RSS ${rssCold >> 20} MB before, ${rssPeak >> 20} MB at the end of the fuzz, ` +
          `${rssAfter >> 20} MB after ${Math.round(backMs / 1000)} s idle`,
      );
      assert.equal(await agent.stop(), 0);
    } finally {
      control.close();
      python.kill();
      await python.status;
      await agent.stop("SIGKILL");
      await emu.close();
    }
  }));
