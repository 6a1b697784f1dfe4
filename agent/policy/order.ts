/**
 * The kernel order of policies: a policy with a selector set that strictly contains a selector set
 * of another policy comes first (more specific wins; the kernel picks the lowest position);
 * otherwise the earlier one in (file, item) order comes first. A stable topological sort, so the
 * order is total and deterministic. Cycles (possible with several selector sets per policy) are
 * kept together in (file, item) order.
 *
 * @module
 */

/** A min-heap of indices. */
class IndexHeap {
  #a: number[] = [];
  get size(): number {
    return this.#a.length;
  }
  push(v: number): void {
    const a = this.#a;
    a.push(v);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (a[p]! <= v) break;
      a[i] = a[p]!;
      a[p] = v;
      i = p;
    }
  }
  pop(): number {
    const a = this.#a;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      let i = 0;
      a[0] = last;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && a[l]! < a[m]!) m = l;
        if (r < a.length && a[r]! < a[m]!) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function isSubset(small: readonly number[], big: readonly number[]): boolean {
  let j = 0;
  for (const x of small) {
    while (j < big.length && big[j]! < x) j++;
    if (j === big.length || big[j] !== x) return false;
    j++;
  }
  return true;
}

/** Strongly connected components (iterative Tarjan): component id per node. */
function components(n: number, succ: readonly (readonly number[])[]): Int32Array {
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const comp = new Int32Array(n).fill(-1);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  let next = 0;
  let count = 0;
  for (let root = 0; root < n; root++) {
    if (index[root] !== -1) continue;
    const work: [node: number, edge: number][] = [[root, 0]];
    index[root] = low[root] = next++;
    stack.push(root);
    onStack[root] = 1;
    while (work.length) {
      const frame = work[work.length - 1]!;
      const [v, e] = frame;
      const edges = succ[v]!;
      if (e < edges.length) {
        frame[1]++;
        const w = edges[e]!;
        if (index[w] === -1) {
          index[w] = low[w] = next++;
          stack.push(w);
          onStack[w] = 1;
          work.push([w, 0]);
        } else if (onStack[w]) low[v] = Math.min(low[v]!, index[w]!);
        continue;
      }
      work.pop();
      if (work.length) {
        const u = work[work.length - 1]![0];
        low[u] = Math.min(low[u]!, low[v]!);
      }
      if (low[v] === index[v]) {
        for (;;) {
          const w = stack.pop()!;
          onStack[w] = 0;
          comp[w] = count;
          if (w === v) break;
        }
        count++;
      }
    }
  }
  return comp;
}

/**
 * Returns policy indices in kernel order. `policies[i]` lists policy i's selector sets, each as
 * its label strings; input order is the tie-break (sort it by file and item first).
 *
 * @example
 * ```ts
 * import { specificityOrder } from "./order.ts";
 * specificityOrder([[["a=1"]], [["a=1", "b=2"]], [["c=3"]]]); // [1, 0, 2]
 * ```
 */
export function specificityOrder(policies: readonly (readonly (readonly string[])[])[]): number[] {
  const n = policies.length;
  const labelIds = new Map<string, number>();
  const postings: number[][] = [];
  const setIds = new Map<string, number>();
  const setLabels: number[][] = [];
  const owners: number[][] = [];
  for (let p = 0; p < n; p++) {
    for (const set of policies[p]!) {
      const ids = set.map((l) => {
        let id = labelIds.get(l);
        if (id === undefined) {
          id = labelIds.size;
          labelIds.set(l, id);
          postings.push([]);
        }
        return id;
      }).sort((a, b) => a - b);
      const key = ids.join(",");
      let s = setIds.get(key);
      if (s === undefined) {
        s = setLabels.length;
        setIds.set(key, s);
        setLabels.push(ids);
        owners.push([]);
        for (const id of ids) postings[id]!.push(s);
      }
      const own = owners[s]!;
      if (own[own.length - 1] !== p) own.push(p);
    }
  }

  // Edges p → q: p has a set strictly containing one of q's sets.
  const succ: number[][] = Array.from({ length: n }, () => []);
  const nonEmpty = setLabels.map((_, s) => s).filter((s) => setLabels[s]!.length > 0);
  for (let s = 0; s < setLabels.length; s++) {
    const small = setLabels[s]!;
    let candidates: readonly number[] = nonEmpty;
    for (const id of small) {
      if (candidates === nonEmpty || postings[id]!.length < candidates.length) {
        candidates = postings[id]!;
      }
    }
    for (const t of candidates) {
      const big = setLabels[t]!;
      if (big.length <= small.length || !isSubset(small, big)) continue;
      for (const p of owners[t]!) {
        for (const q of owners[s]!) {
          if (p === q) continue;
          succ[p]!.push(q);
        }
      }
    }
  }

  // Policies on a cycle form one strongly connected component; they keep input order among
  // themselves, and the components are sorted topologically (earliest member first on ties).
  const comp = components(n, succ);
  const members = new Map<number, number[]>();
  for (let p = 0; p < n; p++) {
    const list = members.get(comp[p]!);
    if (list) list.push(p);
    else members.set(comp[p]!, [p]);
  }
  const head = new Int32Array(n).fill(-1); // component id → its earliest member
  for (const [c, list] of members) head[c] = list[0]!;
  const cIndeg = new Int32Array(n);
  const cSucc: number[][] = Array.from({ length: n }, () => []);
  for (let p = 0; p < n; p++) {
    for (const q of succ[p]!) {
      if (comp[p] === comp[q]) continue;
      cSucc[comp[p]!]!.push(comp[q]!);
      cIndeg[comp[q]!]!++;
    }
  }
  const out: number[] = [];
  const ready = new IndexHeap();
  for (const [c, list] of members) if (cIndeg[c] === 0) ready.push(list[0]!);
  while (ready.size) {
    const c = comp[ready.pop()]!;
    out.push(...members.get(c)!);
    for (const d of cSucc[c]!) if (--cIndeg[d]! === 0) ready.push(head[d]!);
  }
  return out;
}
