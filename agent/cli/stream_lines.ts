/**
 * Follows a streaming endpoint of the control socket (`trace`, `events`): one JSON document a line,
 * until SIGINT/SIGTERM, which end it quietly; the agent ending it is an error.
 *
 * @module
 */
import { ControlClient } from "../control/client.ts";

/** What the messages of {@linkcode streamLines} name. */
export interface StreamWords {
  /** Prefix of the error when the agent refuses the stream: `Cannot start the trace`. */
  cannot: string;
  /** The error when the agent ends it: `the agent ended the trace (it is stopping)`. */
  ended: string;
}

/**
 * GETs `path` on the control socket at `socket` and calls `onLine` with each line (without its
 * newline) as it arrives.
 *
 * @example
 * ```ts ignore
 * await streamLines("/run/camblet/agent.sock", "/v1/events", {
 *   cannot: "Cannot stream events",
 *   ended: "the agent ended the event stream",
 * }, (line) => console.log(line));
 * ```
 */
export async function streamLines(
  socket: string,
  path: string,
  words: StreamWords,
  onLine: (line: string) => void,
): Promise<void> {
  const client = new ControlClient(socket);
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const r = await client.get(path, ac.signal);
    if (!r.ok) throw new Error(`${words.cannot}: ${r.status} ${(await r.text()).trim()}`);
    const dec = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of r.body!) {
        buf += dec.decode(chunk, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          onLine(line);
        }
      }
    } catch (e) {
      if (!ac.signal.aborted) throw e;
    }
    if (!ac.signal.aborted) throw new Error(words.ended);
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    client.close();
  }
}
