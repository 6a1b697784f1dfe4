/**
 * A process that rotates a self-signed CA and can be killed at a chosen point: it prints each
 * completed write step (`step retired`, `step ca`, `step bundle`) and, at `--pause-at=<step>`,
 * prints `paused` and waits to be killed. Used to prove a kill during rotation leaves valid files.
 *
 * @module
 */
import { parseSelfSignedConfig } from "../../plugins/ca/self_signed/config.ts";
import { rotateCa } from "../../plugins/ca/self_signed/ca_store.ts";
import { systemClock } from "../../plugins/types.ts";

const arg = (name: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const parsed = parseSelfSignedConfig({ caPemPath: arg("ca-pem-path"), intermediate: true });
if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
const pauseAt = arg("pause-at");
const target = (arg("target") ?? "root") as "root" | "intermediate";
const say = (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s + "\n"));

say("started");
await rotateCa(parsed.value, systemClock, {
  force: target,
  onStep: async (step) => {
    say(`step ${step}`);
    if (step === pauseAt) {
      say("paused");
      await new Promise(() => setInterval(() => {}, 1 << 30));
    }
  },
});
say("done");
