/**
 * Watches the `file` source's paths. Editors and config managers replace files by renaming a
 * temporary file over them, and directories may appear after the agent started, so directories
 * are watched (the path itself when it is one, else its parent, else the nearest ancestor that
 * exists), events are filtered to the watched paths, and the caller re-creates the watch after
 * each check.
 *
 * @module
 */
import { dirname, resolve } from "node:path";

/** A running watch. */
export interface PathWatch {
  close(): void;
}

function existingDir(path: string): string {
  let p = resolve(path);
  for (;;) {
    try {
      if (Deno.statSync(p).isDirectory) return p;
    } catch { /* missing: go up */ }
    const up = dirname(p);
    if (up === p) return p;
    p = up;
  }
}

/** Calls `onChange` (not debounced) when anything under `paths` may have changed. */
export function watchPaths(
  paths: readonly string[],
  recursive: boolean,
  onChange: () => void,
): PathWatch {
  const targets = paths.map((p) => resolve(p));
  const dirs = [...new Set(targets.map((t) => existingDir(t)))];
  const relevant = (changed: string) =>
    targets.some((t) =>
      changed === t || changed.startsWith(t + "/") || t.startsWith(changed + "/") ||
      dirname(changed) === t
    );
  const watchers: Deno.FsWatcher[] = [];
  for (const dir of dirs) {
    let w: Deno.FsWatcher;
    try {
      // A watched directory itself is watched recursively when the source recurses; an ancestor
      // only for the appearance of the path.
      w = Deno.watchFs(dir, { recursive: recursive && targets.includes(dir) });
    } catch {
      continue;
    }
    watchers.push(w);
    (async () => {
      try {
        // Our own reads show up as "access" events; they are not changes.
        for await (const ev of w) {
          if (ev.kind !== "access" && ev.paths.some(relevant)) onChange();
        }
      } catch { /* closed */ }
    })();
  }
  return {
    close: () => {
      for (const w of watchers) {
        try {
          w.close();
        } catch { /* already closed */ }
      }
    },
  };
}
