import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { RESULT_MARKER } from "./shared.js";

const sectionScript = fileURLToPath(new URL("./section.js", import.meta.url));

/**
 * Runs one bench section (bench/section.js) in a fresh process, prints what it printed and its lines, and returns
 * its results. With allowFailure a crashed section (say a model that overran the heap) returns { failed } instead
 * of stopping the bench; its stderr has already passed through.
 */
export function runSection(name, { machine = {}, args = {}, allowFailure = false } = {}) {
  const result = spawnSync(process.execPath, [sectionScript, name, JSON.stringify(args)], {
    env: { ...process.env, FINETUNE_BENCH_MACHINE: JSON.stringify(machine) },
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  const output = (result.stdout ?? "").split("\n");
  const report = output.find((line) => line.startsWith(RESULT_MARKER));
  for (const line of output) if (line && line !== report) console.log(line);
  const failure = result.status !== 0 ? `exit ${result.status ?? result.signal}` : report ? null : "printed no result";
  if (failure) {
    if (allowFailure) return { failed: failure };
    throw new Error(`bench section "${name}" failed (${failure})`);
  }
  const { lines, results } = JSON.parse(report.slice(RESULT_MARKER.length));
  for (const line of lines) console.log(line);
  return results;
}
