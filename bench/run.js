// `npm run bench`: prints figures measured on this machine, in one run. No thresholds: tests never time things.
// Each section runs in a fresh process: the garbage one leaves (the copy test's buffers, a model's weights) slowed
// the next by up to 15% when they shared one.
// `node bench/run.js big-models` (or `npm run bench -- quantized training`) runs only the named parts; see
// bench/big-models.js for the environment variables of the storage-format tables.
import { bigModels, quantizedComparison } from "./big-models.js";
import { runSection } from "./run-section.js";

// "webgpu" runs only when named: it needs the webgpu package and an adapter (see README, Backends).
const PARTS = ["startup", "generation", "training", "weights", "quantized", "big-models", "webgpu"];
const chosen = process.argv.slice(2);
const unknown = chosen.filter((part) => !PARTS.includes(part));
if (unknown.length > 0) throw new Error(`unknown bench part ${unknown.join(", ")} (one of ${PARTS.join(", ")})`);
const wanted = (part) => (chosen.length === 0 && part !== "webgpu") || chosen.includes(part);

if (wanted("startup")) runSection("startup");
// The other parts report against this machine's GEMM peak and memory bandwidth, measured in the same run.
const machine = PARTS.slice(1, -1).some(wanted) ? runSection("machine") : {};
if (wanted("generation")) runSection("generation", { machine });
if (wanted("training")) runSection("training", { machine });
if (wanted("weights")) runSection("weights");
if (wanted("quantized")) for (const line of quantizedComparison(machine)) console.log(line);
if (wanted("big-models")) for (const line of bigModels(machine)) console.log(line);
if (wanted("webgpu")) {
  runSection("webgpu");
  // The training section on SmolLM2-135M shapes, on the webgpu backend.
  process.env.FINETUNE_BACKEND = "webgpu";
  runSection("training");
}
