import { loadNativeMatmul } from "../dist/backend/native-matmul.js";
import { loadNativeWeights } from "../dist/backend/native-weights.js";

const FORMATS = ["f32", "bf16", "f16", "int8", "nf4"];
// W [rows, cols] as a linear layer stores it: [out, in]. A 1B decoder's attention and MLP projections.
const SHAPES = [
  [2048, 2048],
  [8192, 2048],
];
const PREFILL = 512;
// "Tokens/s" below: the decode rate of a model with this many weights (Llama-3.2-1B) read at this matrix's speed.
const MODEL_WEIGHTS = 1.236e9;

function bestSeconds(run, calls) {
  let best = Infinity;
  for (let i = 0; i < calls; i += 1) {
    const t0 = performance.now();
    run();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

/** Best of `calls` for each format, the formats interleaved over three rounds so a burst of load hits them all alike. */
function bestByFormat(runs, calls) {
  const best = Object.fromEntries(Object.keys(runs).map((key) => [key, Infinity]));
  for (let round = 0; round < 3; round += 1) {
    for (const [key, run] of Object.entries(runs)) best[key] = Math.min(best[key], bestSeconds(run, calls));
  }
  return best;
}

function pad(text, width) {
  return String(text).padEnd(width);
}

/**
 * The native weight store (issue #12): GEMM throughput of each storage format at n = 512 against the plain sgemm on
 * the same float32 weights, and one-token decoding (n = 1) in GB/s of stored bytes.
 */
export async function weightsBench() {
  const lines = ["## native weight store: GEMM (n = 512) and decode GEMV (n = 1) per storage format"];
  const weights = loadNativeWeights({ ...process.env, FINETUNE_NATIVE: undefined });
  const matmul = loadNativeMatmul({ ...process.env, FINETUNE_NATIVE: undefined });
  if (weights.addon === null || matmul.addon === null) {
    lines.push(`not available (${weights.addon === null ? weights.reason : matmul.reason})`, "");
    return { lines, results: {} };
  }
  const store = weights.addon;
  const { kernel, threads } = weights.info;
  lines.push(`kernel ${kernel}, ${threads} threads; best of several calls, formats interleaved`);
  const results = {};
  for (const [rows, cols] of SHAPES) {
    const values = new Float32Array(rows * cols);
    for (let i = 0; i < values.length; i += 1) values[i] = Math.sin(i * 0.618) * 0.05;
    const handles = Object.fromEntries(FORMATS.map((format) => [format, store.weightsCreate(new Uint8Array(values.buffer), "F32", rows, cols, format)]));

    // Training and prefill: y = x·Wᵀ (forward) and x·W (the input gradient), against sgemm on a float32 copy.
    const flops = 2 * PREFILL * rows * cols;
    const buffer = new ArrayBuffer((rows * cols + PREFILL * Math.max(rows, cols) * 2) * 4);
    new Float32Array(buffer, 0, rows * cols).set(values);
    const xOffset = rows * cols * 4;
    const yOffset = xOffset + PREFILL * Math.max(rows, cols) * 4;
    new Float32Array(buffer, xOffset, PREFILL * Math.max(rows, cols)).fill(0.25);
    for (const transposed of [false, true]) {
      const [inner, outer] = transposed ? [rows, cols] : [cols, rows];
      const x = new Float32Array(PREFILL * inner).fill(0.25);
      const y = new Float32Array(PREFILL * outer);
      const runs = {
        sgemm: () => matmul.addon.sgemm(buffer, xOffset, 0, yOffset, PREFILL, outer, inner, false, !transposed, 1, 0, 0, 0),
      };
      for (const format of FORMATS) runs[format] = () => store.weightsMatmul(handles[format], x, PREFILL, y, transposed);
      const best = bestByFormat(runs, 2);
      const gflops = Object.fromEntries(Object.entries(best).map(([key, seconds]) => [key, flops / seconds / 1e9]));
      results[`gemm ${rows}x${cols}${transposed ? " x·W" : " x·Wᵀ"}`] = gflops;
      lines.push(
        `GEMM ${rows}x${cols} ${transposed ? "x·W " : "x·Wᵀ"} n=${PREFILL}: sgemm ${gflops.sgemm.toFixed(1)} GFLOP/s · ` +
          FORMATS.map((format) => `${format} ${gflops[format].toFixed(1)} (${((100 * gflops[format]) / gflops.sgemm).toFixed(0)}%)`).join(" · "),
      );
    }

    // Decoding: one token, x·Wᵀ, memory-bound: GB/s of stored bytes.
    const x = new Float32Array(cols).fill(0.25);
    const y = new Float32Array(rows);
    const runs = Object.fromEntries(FORMATS.map((format) => [format, () => store.weightsMatmul(handles[format], x, 1, y, false)]));
    const best = bestByFormat(runs, 20);
    results[`gemv ${rows}x${cols}`] = best;
    lines.push(`decode ${rows}x${cols} n=1:`);
    for (const format of FORMATS) {
      const seconds = best[format];
      const gbs = handles[format].bytes / seconds / 1e9;
      const tokens = (rows * cols) / seconds / MODEL_WEIGHTS;
      const speedup = best.f32 / seconds;
      lines.push(
        `  ${pad(format, 5)} ${pad(`${(seconds * 1e6).toFixed(0)} µs`, 9)} ${pad(`${gbs.toFixed(1)} GB/s`, 11)} ` +
          `${pad(`${(handles[format].bytes / 2 ** 20).toFixed(1)} MiB`, 10)} ${pad(`${tokens.toFixed(1)} tok/s for 1.24B weights`, 28)} ${speedup.toFixed(2)}x f32`,
      );
    }
    for (const handle of Object.values(handles)) store.weightsFree(handle);
  }
  lines.push("");
  return { lines, results };
}
