// One section of `npm run bench`, run by bench/run-section.js in a process of its own; prints { lines, results } as
// JSON on one line after RESULT_MARKER, so anything else a section prints passes through. Its arguments come as
// JSON in argv[3].
import { ensureCheckpoint } from "./big-checkpoint.js";
import { formatRun } from "./format-run.js";
import { generationBench } from "./generation.js";
import { matmulBench } from "./matmul.js";
import { startupBench } from "./startup.js";
import { RESULT_MARKER } from "./shared.js";
import { trainingBench } from "./training.js";
import { weightsBench } from "./weights.js";
import { webgpuBench } from "./webgpu.js";

const machine = JSON.parse(process.env.FINETUNE_BENCH_MACHINE ?? "{}");
const args = JSON.parse(process.argv[3] ?? "{}");
const sections = {
  startup: async () => ({ lines: await startupBench() }),
  machine: () => matmulBench(),
  generation: async () => ({ lines: await generationBench(machine) }),
  training: async () => ({ lines: await trainingBench(machine) }),
  weights: () => weightsBench(),
  webgpu: async () => ({ lines: await webgpuBench() }),
  // The big-model tables (bench/big-models.js): write a cached checkpoint, measure one format of one model.
  // Its progress goes to stderr, which passes through live: writing a 3B checkpoint takes a while.
  checkpoint: () => ({ lines: [], results: ensureCheckpoint(args.name, (line) => console.error(line)) }),
  format: async () => ({ lines: [], results: await formatRun(args) }),
};
const name = process.argv[2] ?? "";
if (!(name in sections)) throw new Error(`unknown bench section "${name}" (one of ${Object.keys(sections).join(", ")})`);
process.stdout.write(`\n${RESULT_MARKER}${JSON.stringify(await sections[name]())}\n`);
