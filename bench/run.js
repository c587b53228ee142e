// `npm run bench`: prints figures measured on this machine, in one run. No thresholds: tests never time things.
// Each section runs in a fresh process: the garbage one leaves (the copy test's buffers, a model's weights) slowed
// the next by up to 15% when they shared one.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { RESULT_MARKER } from "./shared.js";

const sectionScript = fileURLToPath(new URL("./section.js", import.meta.url));

function section(name, machine = {}) {
  const result = spawnSync(process.execPath, [sectionScript, name], {
    env: { ...process.env, FINETUNE_BENCH_MACHINE: JSON.stringify(machine) },
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`bench section "${name}" failed (exit ${result.status ?? result.signal})`);
  const output = result.stdout.split("\n");
  const report = output.find((line) => line.startsWith(RESULT_MARKER));
  for (const line of output) if (line && line !== report) console.log(line);
  if (!report) throw new Error(`bench section "${name}" printed no result`);
  const { lines, results } = JSON.parse(report.slice(RESULT_MARKER.length));
  for (const line of lines) console.log(line);
  return results;
}

section("startup");
const machine = section("machine");
section("generation", machine);
section("training", machine);
section("weights");
