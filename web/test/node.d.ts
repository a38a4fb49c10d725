// The few Node.js modules the unit tests use, declared here so that the
// type check needs no @types/node (which would also leak Node's globals
// into the browser sources).

declare module 'node:test' {
  export function test(name: string, fn: () => void | Promise<void>): void;
}

declare module 'node:assert/strict' {
  interface Assert {
    (value: unknown, message?: string): asserts value;
    equal<T>(actual: unknown, expected: T, message?: string): asserts actual is T;
    notEqual(actual: unknown, expected: unknown, message?: string): void;
    deepEqual<T>(actual: unknown, expected: T, message?: string): asserts actual is T;
    notDeepEqual(actual: unknown, expected: unknown, message?: string): void;
    ok(value: unknown, message?: string): asserts value;
    match(value: string, re: RegExp, message?: string): void;
    throws(fn: () => unknown, error?: unknown, message?: string): void;
    rejects(p: Promise<unknown> | (() => Promise<unknown>), error?: unknown, message?: string): Promise<void>;
  }
  const assert: Assert;
  export default assert;
}
