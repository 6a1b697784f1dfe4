/**
 * Gives glibc's free heap memory back to the kernel now and then. Deno's threads (tokio's blocking
 * pool, V8's platform workers, each isolate) malloc in up to 8 arenas per core, and glibc returns
 * the free space of an arena only from its top, and a big freed block raises its trim threshold
 * (up to 64 MiB): after a burst the agent kept 10-25 MiB of free, resident heap. `malloc_trim(0)`
 * releases the free pages of every arena. It runs on a thread of the blocking pool (a
 * `nonblocking` FFI call), never on the thread that answers the kernel.
 *
 * @module
 */

/** What a trim released, for tests; `undefined` where libc has no `malloc_trim` (not glibc). */
export interface MallocTrimmer {
  /** Trims once; resolves true if memory was released. */
  trim(): Promise<boolean>;
  /** Stops the periodic trim and closes libc. */
  stop(): void;
}

/**
 * Trims once `firstMs` after the start (what loading the code left: with a cold V8 code cache the
 * bundle's start kept ~45 MiB), then every `everyMs` while `busy()` says there was work since the
 * last trim (an idle agent has nothing new to give back). Returns undefined when `malloc_trim` is
 * missing.
 */
export function startMallocTrim(
  everyMs = 10_000,
  busy: () => boolean = () => true,
  firstMs = 1_000,
): MallocTrimmer | undefined {
  let lib: Deno.DynamicLibrary<{
    malloc_trim: { parameters: ["usize"]; result: "i32"; nonblocking: true };
  }>;
  try {
    lib = Deno.dlopen("libc.so.6", {
      malloc_trim: { parameters: ["usize"], result: "i32", nonblocking: true },
    });
  } catch {
    return undefined;
  }
  let running: Promise<boolean> | undefined;
  const trim = () =>
    running ??= lib.symbols.malloc_trim(0n).then((r) => r === 1).finally(() => running = undefined);
  const first = setTimeout(() => void trim(), firstMs);
  const timer = setInterval(() => {
    if (busy()) void trim();
  }, everyMs);
  Deno.unrefTimer(first);
  Deno.unrefTimer(timer);
  let stopped = false;
  return {
    trim,
    stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      // A trim in flight still uses the library.
      void (running ?? Promise.resolve()).finally(() => lib.close());
    },
  };
}
