/**
 * A small Prometheus registry (text exposition format 0.0.4): gauges read at scrape time from the
 * parts' own state, and counters with optional labels. Enough for SPEC.md §5 without a dependency.
 */
type Labels = Record<string, string>;

interface GaugeDef {
  kind: 'gauge' | 'counter';
  name: string;
  help: string;
  /** One value, or one per label set. */
  read: () => number | [Labels, number][];
}

export class Counter {
  readonly name: string;
  readonly help: string;
  private readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key);
    if (entry === undefined) this.values.set(key, { labels, value: by });
    else entry.value += by;
  }

  /** Declares a label combination so it is exported as 0 before the first increment. */
  declare(labels: Labels): this {
    const key = labelText(labels);
    if (!this.values.has(key)) this.values.set(key, { labels, value: 0 });
    return this;
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }

  render(): string {
    let out = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} counter\n`;
    if (this.values.size === 0) out += `${this.name} 0\n`;
    for (const [key, { value }] of this.values) out += `${this.name}${key} ${value}\n`;
    return out;
  }
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function labelText(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  const parts = keys.map(
    (k) => `${k}="${labels[k]!.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
  );
  return `{${parts.join(',')}}`;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

export class Registry {
  private readonly gauges: GaugeDef[] = [];
  private readonly counters: Counter[] = [];

  /** A gauge whose value is read from `read` at every scrape; one value per label set. */
  gauge(name: string, help: string, read: () => number | [Labels, number][]): void {
    this.check(name);
    this.gauges.push({ kind: 'gauge', name, help, read });
  }

  /** A counter kept by a part itself (monotonic), read at every scrape; one value per label set. */
  collectedCounter(name: string, help: string, read: () => number | [Labels, number][]): void {
    this.check(name);
    this.gauges.push({ kind: 'counter', name, help, read });
  }

  counter(name: string, help: string): Counter {
    this.check(name);
    const counter = new Counter(name, help);
    this.counters.push(counter);
    return counter;
  }

  render(): string {
    let out = '';
    for (const g of this.gauges) {
      let values: [Labels, number][];
      try {
        const read = g.read();
        values = typeof read === 'number' ? [[{}, read]] : read;
      } catch {
        values = [[{}, Number.NaN]];
      }
      out += `# HELP ${g.name} ${escapeHelp(g.help)}\n# TYPE ${g.name} ${g.kind}\n`;
      for (const [labels, value] of values) out += `${g.name}${labelText(labels)} ${formatValue(value)}\n`;
    }
    for (const c of this.counters) out += c.render();
    return out;
  }

  private check(name: string): void {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${name}`);
    if (this.gauges.some((g) => g.name === name) || this.counters.some((c) => c.name === name)) {
      throw new Error(`metric ${name} registered twice`);
    }
  }
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
