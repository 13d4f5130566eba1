import { expect, test } from "bun:test";
import { MetricsText } from "./metrics.ts";

test("Prometheus text: HELP and TYPE once per metric, one line per sample", () => {
  const text = new MetricsText()
    .series("x_total", "counter", "Things.", [
      ['{k="a"}', 1],
      ['{k="b"}', 2],
    ])
    .single("y", "gauge", "One value.", "0.500")
    .series("h", "histogram", "Times.", [
      ['_bucket{le="1"}', 3],
      ["_count", 3],
    ])
    .text();
  expect(text).toBe(
    [
      "# HELP x_total Things.",
      "# TYPE x_total counter",
      'x_total{k="a"} 1',
      'x_total{k="b"} 2',
      "# HELP y One value.",
      "# TYPE y gauge",
      "y 0.500",
      "# HELP h Times.",
      "# TYPE h histogram",
      'h_bucket{le="1"} 3',
      "h_count 3",
      "",
    ].join("\n"),
  );
});
