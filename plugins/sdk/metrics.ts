/**
 * A small in-process metrics registry: counters and histograms with labels, readable as data
 * ({@linkcode MetricsRegistry.snapshot}) or as Prometheus text. The identity manager counts
 * issuances and refusals here, plugins report their gauges into it, and `/metrics` renders it.
 *
 * @module
 */

type LabelValues = Record<string, string>;

function key(labels: LabelValues | undefined): string {
  if (!labels) return "";
  return Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(",");
}

function render(labels: string, extra = ""): string {
  const all = [labels, extra].filter(Boolean).join(",");
  return all ? `{${all}}` : "";
}

/** A monotonically increasing count per label set. */
export class Counter {
  readonly type = "counter";
  #values = new Map<string, { labels: LabelValues; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  /** Adds `n` (default 1). */
  inc(labels?: LabelValues, n = 1): void {
    const k = key(labels);
    const entry = this.#values.get(k);
    if (entry) entry.value += n;
    else this.#values.set(k, { labels: { ...labels }, value: n });
  }

  /** The count for exactly these labels (0 when never counted). */
  get(labels?: LabelValues): number {
    return this.#values.get(key(labels))?.value ?? 0;
  }

  /** Every label set and its count. */
  entries(): { labels: LabelValues; value: number }[] {
    return [...this.#values.values()].map((e) => ({ labels: { ...e.labels }, value: e.value }));
  }

  /** Prometheus text lines. */
  toText(): string[] {
    return [...this.#values.values()].map((e) => `${this.name}${render(key(e.labels))} ${e.value}`);
  }
}

/** A value per label set that goes up and down (e.g. seconds left on a CA certificate). */
export class Gauge {
  readonly type = "gauge";
  #values = new Map<string, { labels: LabelValues; value: number }>();
  constructor(readonly name: string, readonly help: string) {}

  /** Sets the value for these labels. */
  set(value: number, labels?: LabelValues): void {
    this.#values.set(key(labels), { labels: { ...labels }, value });
  }

  /** The value for exactly these labels (undefined when never set). */
  get(labels?: LabelValues): number | undefined {
    return this.#values.get(key(labels))?.value;
  }

  /** Prometheus text lines. */
  toText(): string[] {
    return [...this.#values.values()].map((e) => `${this.name}${render(key(e.labels))} ${e.value}`);
  }
}

/** A cumulative histogram of observations (e.g. seconds). */
export class Histogram {
  readonly type = "histogram";
  #series = new Map<
    string,
    { labels: LabelValues; counts: number[]; sum: number; count: number }
  >();
  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}

  /** Records one observation. */
  observe(value: number, labels?: LabelValues): void {
    const k = key(labels);
    let s = this.#series.get(k);
    if (!s) {
      s = { labels: { ...labels }, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(k, s);
    }
    this.buckets.forEach((b, i) => {
      if (value <= b) s.counts[i]!++;
    });
    s.sum += value;
    s.count++;
  }

  /** Count and sum for exactly these labels. */
  get(labels?: LabelValues): { count: number; sum: number } {
    const s = this.#series.get(key(labels));
    return { count: s?.count ?? 0, sum: s?.sum ?? 0 };
  }

  /** Prometheus text lines. */
  toText(): string[] {
    const out: string[] = [];
    for (const s of this.#series.values()) {
      const l = key(s.labels);
      this.buckets.forEach((b, i) =>
        out.push(`${this.name}_bucket${render(l, `le="${b}"`)} ${s.counts[i]}`)
      );
      out.push(`${this.name}_bucket${render(l, 'le="+Inf"')} ${s.count}`);
      out.push(`${this.name}_sum${render(l)} ${s.sum}`);
      out.push(`${this.name}_count${render(l)} ${s.count}`);
    }
    return out;
  }
}

/**
 * Holds metrics by name; asking twice for the same name returns the same metric.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./metrics.ts";
 * const m = new MetricsRegistry();
 * m.counter("camblet_x_total", "things").inc({ result: "ok" });
 * m.counter("camblet_x_total", "things").get({ result: "ok" }); // 1
 * ```
 */
export class MetricsRegistry {
  #metrics = new Map<string, Counter | Histogram | Gauge>();

  /** The counter called `name`, created on first use. */
  counter(name: string, help: string): Counter {
    const m = this.#metrics.get(name) ?? new Counter(name, help);
    if (!(m instanceof Counter)) throw new TypeError(`Cannot use metric "${name}" as a counter`);
    this.#metrics.set(name, m);
    return m;
  }

  /** The histogram called `name`, created on first use. */
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    const m = this.#metrics.get(name) ?? new Histogram(name, help, buckets);
    if (!(m instanceof Histogram)) {
      throw new TypeError(`Cannot use metric "${name}" as a histogram`);
    }
    this.#metrics.set(name, m);
    return m;
  }

  /** The gauge called `name`, created on first use. */
  gauge(name: string, help: string): Gauge {
    const m = this.#metrics.get(name) ?? new Gauge(name, help);
    if (!(m instanceof Gauge)) throw new TypeError(`Cannot use metric "${name}" as a gauge`);
    this.#metrics.set(name, m);
    return m;
  }

  /** Every metric, by name. */
  snapshot(): (Counter | Histogram | Gauge)[] {
    return [...this.#metrics.values()];
  }

  /** Prometheus text exposition format. */
  toPrometheus(): string {
    return this.snapshot().map((m) =>
      [`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.toText()].join("\n") + "\n"
    ).join("");
  }
}
