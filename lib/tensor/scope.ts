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

/**
 * Runs fn in a new scope; `end` gets the tensors created inside it and, when fn returned, the tensors of its result
 * (an empty set when fn threw).
 */
function scoped<T>(name: string, fn: () => T, end: (scope: Set<Tensor>, returned: Set<Tensor>) => void): T {
  const scope = new Set<Tensor>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    end(scope, new Set());
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    end(scope, new Set());
    throw new TypeError(`${name}(): the function must be synchronous (await outside it)`);
  }
  const returned = new Set<Tensor>();
  collect(result, returned, new Set());
  end(scope, returned);
  return result;
}

export function tidy<T>(fn: () => T): T {
  return scoped("tidy", fn, (scope, returned) => {
    for (const t of scope) {
      if (returned.has(t)) trackInScope(t);
      else t.dispose();
    }
  });
}

/**
 * Runs fn and releases (Tensor.release) every tensor it created and does not return: freed at once unless a
 * recorded backward reads it, else right after that backward; those stay in the enclosing scope meanwhile. For the
 * bodies of modules and composite ops, whose intermediate results nobody else can reach (a tensor fn stores for
 * later must be kept). Frees what PyTorch frees when the last reference to a tensor goes.
 */
export function freeTemporaries<T>(fn: () => T): T {
  if (releaseDeferred) return fn();
  return scoped("freeTemporaries", fn, releaseAll);
}

function releaseAll(scope: Set<Tensor>, returned: Set<Tensor>): void {
  for (const t of scope) {
    if (!returned.has(t)) t.release();
    if (!t.disposed) trackInScope(t);
  }
}

let releaseDeferred = false;

/** Whether keepTemporaries() is in effect: releases are no-ops, and every tensor lives until its tidy scope ends. */
export function isReleaseDeferred(): boolean {
  return releaseDeferred;
}

/**
 * Runs fn with early freeing off, as before it existed: released tensors, intermediate results and saved tensors
 * all live until their tidy scope ends. For comparing results and memory with and without early freeing.
 */
export function keepTemporaries<T>(fn: () => T): T {
  const prev = releaseDeferred;
  releaseDeferred = true;
  try {
    return fn();
  } finally {
    releaseDeferred = prev;
  }
}

export function scopeDepth(): number {
  return stack.length;
}
