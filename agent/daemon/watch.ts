/**
 * Watches policy and service paths for changes. Editors and config managers replace files by
 * writing a temporary file and renaming it over the old one, and directories may appear later,
 * so the watch is on directories (the path itself when it is one, else its parent, else the
 * nearest ancestor that exists) and events are filtered to the watched paths.
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

/**
 * Calls `onChange` (not debounced) when anything under `paths` may have changed. Re-create the
 * watch after a path that did not exist appears.
 */
export function watchPaths(paths: readonly string[], onChange: (path: string) => void): PathWatch {
  const targets = paths.map((p) => resolve(p));
  const dirs = [...new Set(targets.map((t) => existingDir(t)))];
  const relevant = (changed: string) =>
    targets.some((t) =>
      changed === t || changed.startsWith(t + "/") || t.startsWith(changed + "/")
    );
  const watchers: Deno.FsWatcher[] = [];
  for (const dir of dirs) {
    let w: Deno.FsWatcher;
    try {
      // Recursive only inside a watched directory itself; an ancestor is watched for the
      // appearance of the path (the daemon re-creates the watch after each reload).
      w = Deno.watchFs(dir, { recursive: targets.includes(dir) });
    } catch {
      continue;
    }
    watchers.push(w);
    (async () => {
      try {
        for await (const ev of w) {
          const hit = ev.paths.find(relevant);
          if (hit) onChange(hit);
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
