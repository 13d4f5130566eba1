/** Operator metadata: which built-ins are stateless, by any name they answer to. */
import { expect, test } from "bun:test";
import { isStatelessOperator, OPERATOR_NAMES, OPERATORS, STATELESS_OPERATORS } from "./registry.ts";

test.each([
  ["grep", true],
  ["grep-wrapper", true],
  ["grep-wrapper2", true],
  ["transform-wrapper", true],
  ["echo", true],
  ["aggregate", false],
  ["aggregate-wrapper", false],
  ["my-own-op", false],
  ["constructor", false],
])("isStatelessOperator(%p) = %p", (name, want) => {
  expect(isStatelessOperator(name)).toBe(want);
});

test("every stateless name is a built-in operator, and every accepted name is classified", () => {
  for (const n of STATELESS_OPERATORS) expect(Object.keys(OPERATORS)).toContain(n);
  expect(OPERATOR_NAMES.filter((n) => isStatelessOperator(n)).length).toBe(8);
});
