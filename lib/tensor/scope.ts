import type { Tensor } from "./tensor";

/**
 * Step scopes: every tensor created inside `tidy(fn)` is disposed when fn returns, except the tensors
 * it returns (which move to the enclosing scope) and those marked with `keep()`.
 */
const stack: Set<Tensor>[] = [];

export function trackInScope(t: Tensor): void {
  if (stack.length) stack[stack.length - 1].add(t);
}

export function untrack(t: Tensor): void {
  for (let i = stack.length - 1; i >= 0; i--) if (stack[i].delete(t)) return;
}

function collect(value: unknown, out: Set<Tensor>, seen: Set<unknown>): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if (typeof (value as Tensor).keep === "function" && "gradFn" in (value as object)) {
    out.add(value as Tensor);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collect(v, out, seen);
  else if (value instanceof Map) for (const v of value.values()) collect(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, out, seen);
}

export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) throw new TypeError("tidy(): the function must be synchronous; use tidyAsync for async work");
  const returned = new Set<Tensor>();
  collect(result, returned, new Set());
  for (const t of scope) {
    if (returned.has(t)) trackInScope(t);
    else t.dispose();
  }
  return result;
}

export function scopeDepth(): number {
  return stack.length;
}
