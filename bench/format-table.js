// Prints one model's per-format figures (bench/format-run.js results) as a compact table with its footnotes.
import { DECODE, TRAIN } from "./format-settings.js";

const COLUMNS = [
  ["format", 7], ["stored", 8], ["weights", 8], ["load", 7], ["RSS load", 9], ["train tok/s", 12], ["GFLOP/s (% peak)", 17],
  ["RSS train", 10], ["decode tok/s", 13], ["bound tok/s (%)", 16], ["tfjs decode", 12],
];

/** Lines for `rows` ({ format, ...formatRun result or { failed } }) of one model, with `machine`'s peak and bandwidth. */
export function formatTable({ label, rows, machine, steps }) {
  const first = rows.find((r) => r.backend) ?? {};
  const params = rows.find((r) => r.parameterCount)?.parameterCount;
  const lines = [
    `## ${label} shapes, random BF16 weights${params ? `, ${count(params)} parameters` : ""}, backend ${first.backend ?? "?"}`,
    `train: T=${TRAIN.T}, batch 1, LoRA r=${TRAIN.r} on q,k,v,o,gate,up,down, gradient checkpointing; median of ${steps.timedSteps} timed step(s) after ${steps.warmupSteps} warm-up`,
    `GFLOP/s = 4 × matmul parameters × tokens/s (forward 2 + input gradient 2; no frozen weight gradient; the checkpointing recompute and attention not counted)` +
      (machine.peak ? `, % of the ${machine.peak.toFixed(0)} GFLOP/s fp32 GEMM peak above` : ""),
    `decode: ${DECODE.prompt}-token prompt, ${DECODE.tokens} greedy tokens with the KV cache, as generate runs it (the native lean decoder; none: float32 weights in the native store); tfjs decode: the model's tfjs forward pass` +
      (machine.bandwidth ? `; bound = ${machine.bandwidth.toFixed(1)} GB/s copy bandwidth above ÷ stored weight bytes (all read once per token)` : ""),
    `RSS: peak resident set size, right after loading and while training`,
  ];
  const none = rows.find((r) => r.format === "none" && r.trainTps);
  const noneDecode = rows.find((r) => r.format === "none" && r.decodeTps);
  const columns = [...COLUMNS, ...(none ? [["train ×none", 12]] : []), ...(noneDecode ? [["decode ×none", 12]] : [])];
  lines.push(columns.map(([title, width]) => title.padEnd(width)).join(" ").trimEnd());
  const notes = [];
  for (const r of rows) {
    const cells = [r.format, r.storedAs ?? "", r.weightBytes ? bytes(r.weightBytes) : ""];
    const reason = r.failed ? `crashed (${r.failed}; its error is printed above)` : r.error ?? r.skipped;
    if (reason) {
      lines.push(`${pad(cells, columns)}${reason}`);
      continue;
    }
    const bound = machine.bandwidth && r.weightBytes ? (machine.bandwidth * 1e9) / r.weightBytes : null;
    cells.push(
      `${r.loadSeconds.toFixed(1)} s`,
      bytes(r.loadPeakKiB * 1024),
      r.trainTps ? r.trainTps.toFixed(1) : "—",
      r.gflops ? `${r.gflops.toFixed(1)}${machine.peak ? ` (${((100 * r.gflops) / machine.peak).toFixed(0)}%)` : ""}` : "—",
      r.trainPeakKiB ? bytes(r.trainPeakKiB * 1024) : "—",
      r.decodeTps ? r.decodeTps.toFixed(2) : "—",
      bound ? `${bound.toFixed(2)}${r.decodeTps ? ` (${((100 * r.decodeTps) / bound).toFixed(0)}%)` : ""}` : "—",
      r.tfjsDecodeTps ? r.tfjsDecodeTps.toFixed(2) : "—",
    );
    if (none) cells.push(r.trainTps ? `${(r.trainTps / none.trainTps).toFixed(2)}×` : "—");
    if (noneDecode) cells.push(r.decodeTps ? `${(r.decodeTps / noneDecode.decodeTps).toFixed(2)}×` : "—");
    lines.push(pad(cells, columns).trimEnd());
    if (r.format !== "none" && r.storedAs === "float32") notes.push(`${r.format}: loaded as float32 tensors (this build does not store quantize: ${r.format} natively yet)`);
    for (const [what, text] of [["training", r.trainSkipped ?? r.trainError], ["decode", r.decodeError]]) if (text) notes.push(`${r.format}: ${what} ${text}`);
    if (r.decoder && r.decoder !== "native") notes.push(`${r.format}: generate runs the tfjs forward pass here (no native decoder in this build)`);
    if (r.trainPeakKiB && r.trainPeakIsPhase === false) notes.push(`${r.format}: RSS train is the process peak, loading included (the peak cannot be reset on this OS)`);
  }
  lines.push(...notes.map((note) => `  · ${note}`), "");
  return lines;
}

function pad(cells, columns) {
  return cells.map((cell, i) => `${cell.padEnd(columns[i]?.[1] ?? 0)} `).join("");
}

/** Decimal units, as the issue's memory goals are written. */
function bytes(n) {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} MB`;
}

function count(n) {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : `${(n / 1e6).toFixed(1)} M`;
}
