#!/usr/bin/env -S deno run -A --v8-flags=--max-semi-space-size=2,--optimize-for-size
/**
 * camblet-agent entry point: parse → run the command → exit code. The only file that calls
 * `Deno.exit` or configures log sinks.
 *
 * @module
 */
import { UsageError } from "./agent/errors.ts";
import { configureLogging, levelFor } from "./agent/log.ts";
import { journalPrefixer } from "./agent/journal.ts";
// The workers (kernel link, policy compiler) run this file in the bundle: their entries
// load eagerly, the CLI (commander, plugins, proxy plane) only on the main thread, in main().
import "./agent/daemon/kernel_worker.ts";
import "./agent/sources/compile_worker.ts";

/** Runs the CLI with `args` and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [{ buildProgram }, { CommanderError }] = await Promise.all([
    import("./agent/cli/program.ts"),
    import("commander"),
  ]);
  const program = buildProgram();
  program.hook("preAction", async (thisCommand) => {
    const v = thisCommand.opts()["verbosity"] ?? Number(Deno.env.get("VERBOSITY") ?? 0);
    await configureLogging(levelFor(Number.isFinite(v) ? Number(v) : 0));
  });
  // `deno task start -- --flag` passes the `--` on (npm habit); it would end option parsing.
  if (args[0] === "--") args = args.slice(1);
  try {
    await program.parseAsync(args, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version "fail" with exit code 0; commander already printed what it had to.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      const help = (e as UsageError & { help?: string }).help;
      if (help) console.error("\n" + help);
      return 2;
    }
    const err = journalPrefixer()("error"); // "<3>" under journald: a failed start is an error
    console.error(`${err}error: ${e instanceof Error ? e.message : String(e)}`);
    if (Deno.env.get("CAMBLET_DEBUG") && e instanceof Error && e.stack) console.error(e.stack);
    return 1;
  }
}

// In the bundle, the kernel link's workers run this same file: only the main thread runs the CLI.
if (import.meta.main && !("WorkerGlobalScope" in globalThis)) {
  Deno.exit(await main(Deno.args));
}
