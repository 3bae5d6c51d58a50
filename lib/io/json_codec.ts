/**
 * JSON that keeps what JSON.stringify would silently lose: bigints (RNG counters, int64 values) and
 * non-finite numbers (a NaN loss in the metrics) are written as {"$bigint": "..."} / {"$number": "NaN"}.
 */
export function encodeJson(value: unknown): string {
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, key: string) {
      const raw = this[key]; // the value before toJSON, so numbers and bigints arrive untouched
      if (typeof raw === "bigint") return { $bigint: raw.toString() };
      if (typeof raw === "number" && !Number.isFinite(raw)) return { $number: String(raw) };
      return arguments[1];
    },
    2,
  );
}

export function decodeJson(text: string): unknown {
  return JSON.parse(text, (_key, v) => {
    if (typeof v === "object" && v !== null && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (keys.length === 1 && keys[0] === "$bigint" && typeof v.$bigint === "string" && /^-?\d+$/.test(v.$bigint)) return BigInt(v.$bigint);
      if (keys.length === 1 && keys[0] === "$number" && ["NaN", "Infinity", "-Infinity"].includes(v.$number)) return Number(v.$number);
    }
    return v;
  });
}
