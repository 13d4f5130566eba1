/** Prometheus text exposition, the one format every daemon's `/metrics` answers in. */
export class MetricsText {
  private readonly lines: string[] = [];

  /** One metric: its HELP and TYPE lines, then one sample per `[labels, value]` (labels like `{k="v"}` or ""). */
  series(name: string, type: "counter" | "gauge" | "histogram", help: string, samples: [string, number | string][]): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...samples.map(([labels, v]) => `${name}${labels} ${v}`));
    return this;
  }

  /** A metric without labels. */
  single(name: string, type: "counter" | "gauge", help: string, value: number | string): this {
    return this.series(name, type, help, [["", value]]);
  }

  text(): string {
    return `${this.lines.join("\n")}\n`;
  }
}
