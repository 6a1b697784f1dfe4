/**
 * "Did you mean …?" for a mistyped subcommand: the closest known name by edit distance
 * (adjacent transpositions count as one edit, so `stauts` → `status`).
 *
 * @module
 */

/** Optimal-string-alignment distance between `a` and `b`. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name closest to `word`, or undefined when none is close (at most 2 edits, and fewer
 * edits than half the word).
 *
 * @example
 * ```ts
 * import { closest } from "./suggest.ts";
 * closest("stauts", ["run", "status", "trace"]); // "status"
 * ```
 */
export function closest(word: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of names) {
    const distance = editDistance(word, name);
    if (distance < bestDistance && distance <= 2 && distance * 2 < Math.max(word.length, 2)) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}
