// The storage-format tables of issue #12: per model, one fresh process per format (none, bf16, int8, nf4), each
// loading the cached random-weight checkpoint and measuring load, decode and training (bench/format-run.js).
//   FINETUNE_BENCH_3B=1          also Llama-3.2-3B (writes 6.4 GB once; training takes minutes per format)
//   FINETUNE_BENCH_TINY=1        tiny models of the same kind instead, to check the harness in seconds
//   FINETUNE_BENCH_FORMATS=a,b   only these formats (default none,bf16,int8,nf4)
//   FINETUNE_BENCH_CACHE=dir     where checkpoints are cached (default ~/.cache/finetune-bench)
import { BIG_MODELS } from "./llama-shapes.js";
import { formatTable } from "./format-table.js";
import { runSection } from "./run-section.js";

const FORMATS = ["none", "bf16", "int8", "nf4"];

/** SmolLM2-135M shapes in every format: the throughput ratios against float32 weights, measured in one run. */
export function quantizedComparison(machine, env = process.env) {
  const name = env.FINETUNE_BENCH_TINY === "1" ? "tiny-llama-b" : "smollm2-135m";
  return modelTable(name, machine, { warmupSteps: 1, timedSteps: timedSteps(env, 2), decodeRounds: 3 }, env);
}

/** Llama-3.2-1B shapes, and 3B when FINETUNE_BENCH_3B=1 (it takes minutes: say so when it is left out). */
export function bigModels(machine, env = process.env) {
  const tiny = env.FINETUNE_BENCH_TINY === "1";
  const lines = modelTable(tiny ? "tiny-llama-a" : "llama-3.2-1b", machine, { warmupSteps: 1, timedSteps: timedSteps(env, 2), decodeRounds: 1 }, env);
  if (env.FINETUNE_BENCH_3B === "1") {
    lines.push(...modelTable(tiny ? "tiny-llama-b" : "llama-3.2-3b", machine, { warmupSteps: 1, timedSteps: timedSteps(env, 1), decodeRounds: 1 }, env));
  } else {
    lines.push("(Llama-3.2-3B shapes left out: FINETUNE_BENCH_3B=1 adds them — a 6.4 GB checkpoint written once, then minutes per format)", "");
  }
  return lines;
}

function modelTable(name, machine, steps, env) {
  const formats = env.FINETUNE_BENCH_FORMATS ? env.FINETUNE_BENCH_FORMATS.split(",").map((f) => f.trim()) : FORMATS;
  const unknown = formats.filter((f) => !FORMATS.includes(f));
  if (unknown.length > 0) throw new Error(`FINETUNE_BENCH_FORMATS: ${unknown.join(", ")} unknown (use some of ${FORMATS.join(",")})`);
  // The format runs probe how this build stores each format on the tiny model, so it is written too.
  for (const model of new Set(["tiny-llama-a", name])) runSection("checkpoint", { args: { name: model } });
  const rows = formats.map((format) => ({ format, ...runSection("format", { machine, args: { name, format, ...steps }, allowFailure: true }) }));
  return formatTable({ label: BIG_MODELS[name].label, rows, machine, steps });
}

function timedSteps(env, fallback) {
  const n = Number(env.FINETUNE_BENCH_TIMED_STEPS);
  return Number.isInteger(n) && n >= 1 ? n : fallback;
}
