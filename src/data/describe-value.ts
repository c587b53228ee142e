/** A short description of a JSON value for error messages: its kind, and the value when it is small. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") return `a string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value === "number" ? "a number" : typeof value === "boolean" ? "a boolean" : typeof value} ${String(value)}`;
}
