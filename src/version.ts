import { readFileSync } from "node:fs";

/** The package version, read once from package.json next to dist/ or src/. */
export function packageVersion(): string {
  const raw: unknown = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  if (typeof raw === "object" && raw !== null && "version" in raw && typeof raw.version === "string") return raw.version;
  return "0.0.0";
}
