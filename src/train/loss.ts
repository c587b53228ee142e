import type * as tfc from "@tensorflow/tfjs-core";
import { addAll } from "../model/ops.js";
import type { CausalLM, Tf } from "../model/types.js";

/**
 * Rows of logits materialised at once: the [tokens, vocab] matrix never exists whole. At most 256 rows and about
 * 2^24 logits (64 MB, of which a chunk keeps ~5 copies alive: logits, softmax, one-hot, difference, gradient), so a
 * 128K vocabulary takes 130 rows; at least 32 rows, since each chunk reads the whole LM head once.
 */
export function lossChunkRows(vocab: number): number {
  return Math.min(256, Math.max(32, Math.floor(2 ** 24 / vocab)));
}
/** Below this a float32 probability is subnormal and −log(p) loses precision (2^-126). */
const SMALLEST_NORMAL = 1.1754943508222875e-38;

/**
 * Σ weight_i · CE(lmHead(h_i), target_i) over rows with weight > 0, as a scalar. The vocabulary is visited in
 * chunks of rows, once: each chunk's softmax gives both the loss (−log p_target) and, when `gradient` is set, the
 * gradient to the hidden states, dh_i = weight_i · (softmax(logits_i) − onehot(target_i)) · W (the LM head is
 * frozen), which is kept for the backward pass instead of recomputing the logits there.
 *
 * On a backend that reads results back only asynchronously (WebGPU), the loss stays on the device, in the exact
 * log-sum-exp form (logsumexp(z) − z_target); elsewhere it is read from the softmax and summed here, as always.
 */
export function weightedLmLoss(tf: Tf, model: CausalLM, hidden: tfc.Tensor2D, targets: Int32Array, weights: Float32Array, options: { gradient: boolean }): tfc.Scalar {
  const rows: number[] = [];
  weights.forEach((w, i) => {
    if (w > 0) rows.push(i);
  });
  const N = hidden.shape[0];
  const H = hidden.shape[1];
  const V = model.head.rows;
  const chunk = lossChunkRows(V);
  const chunks = Array.from({ length: Math.ceil(rows.length / chunk) }, (_, c) => rows.slice(c * chunk, (c + 1) * chunk));

  /** The chunk's weighted loss and, with options.gradient, its rows of dh. */
  const onDevice = !readsBackSynchronously(tf);
  /** −Σ weight·log p_target from the softmax, read back; rows whose p underflows take the exact form. */
  const readBackLoss = (probs: tfc.Tensor2D, input: tfc.Tensor2D, chunkTargets: number[], rowWeights: number[]): number => {
    const picked = tf.tidy(() => pickTargets(tf, probs, chunkTargets));
    const p = picked.dataSync();
    picked.dispose();
    let loss = 0;
    const underflow: number[] = [];
    p.forEach((value, i) => {
      // (A float32 softmax can round a near-certain p just above 1; the loss is then 0, not a tiny negative.)
      if (value >= SMALLEST_NORMAL) loss += (rowWeights[i] ?? 0) * -Math.log(Math.min(value, 1));
      else underflow.push(i);
    });
    // A target so unlikely its probability underflows: the exact log-sum-exp form for those rows only.
    if (underflow.length > 0) loss += exactLoss(tf, model, input, underflow, chunkTargets, rowWeights);
    return loss;
  };
  const chunkLoss = (h: tfc.Tensor2D, chunk: number[]): { loss: number | tfc.Scalar; dh: tfc.Tensor2D | null } => {
    const rowWeights = chunk.map((row) => weights[row] ?? 0);
    const chunkTargets = chunk.map((row) => targets[row] ?? 0);
    const input = tf.tidy(() => rowsOf(tf, h, chunk));
    // With a final-logit soft-cap (Gemma) the capped logits are kept: the cap's derivative needs them.
    const cap = options.gradient ? (model.finalLogitSoftcap ?? null) : null;
    const capped = cap === null ? null : model.lmHead(input);
    const logits = capped ?? (onDevice ? model.lmHead(input) : null);
    const probs = tf.tidy(() => tf.softmax(logits ?? model.lmHead(input)) as tfc.Tensor2D);
    let loss: number | tfc.Scalar;
    if (logits !== null && onDevice) {
      loss = tf.tidy(() => tf.sum(tf.mul(tf.sub(tf.logSumExp(logits, 1), pickTargets(tf, logits, chunkTargets)), tf.tensor1d(rowWeights))) as tfc.Scalar);
    } else {
      loss = readBackLoss(probs, input, chunkTargets, rowWeights);
    }
    if (logits !== capped) logits?.dispose();
    input.dispose();
    // oneHot stays int32 (cast by sub): tfjs-backend-wasm writes int32 bits whatever dtype is asked for.
    let g = options.gradient ? tf.tidy(() => tf.mul(tf.sub(probs, tf.oneHot(tf.tensor1d(chunkTargets, "int32"), V)), tf.reshape(tf.tensor1d(rowWeights), [-1, 1]))) : null;
    probs.dispose();
    if (g && capped && cap !== null) {
      // d(cap·tanh(z/cap))/dz = 1 − tanh² = 1 − (capped/cap)²: the gradient to the head's raw output z.
      const raw: tfc.Tensor = g;
      g = tf.tidy(() => tf.mul(raw, tf.sub(1, tf.square(tf.div(capped, cap)))));
      raw.dispose();
    }
    capped?.dispose();
    if (!g) return { loss, dh: null };
    const dh = model.head.applyTransposed(g as tfc.Tensor2D);
    g.dispose();
    return { loss, dh };
  };

  /** The chunks' losses summed: numbers here, or device scalars added on the device. */
  const sum = (losses: Array<number | tfc.Scalar>): tfc.Scalar => {
    const numbers = losses.filter((l): l is number => typeof l === "number").reduce((a, b) => a + b, 0);
    const tensors = losses.filter((l): l is tfc.Scalar => typeof l !== "number");
    if (tensors.length === 0) return tf.scalar(numbers);
    const total = tf.tidy(() => tf.add(addAll(tf, tensors), numbers) as tfc.Scalar);
    tf.dispose(tensors);
    return total;
  };
  if (!options.gradient) return sum(chunks.map((chunk) => chunkLoss(hidden, chunk).loss));
  const lossFn = tf.customGrad((...inputs: Array<tfc.Tensor | tfc.GradSaveFunc>) => {
    const h = inputs[0] as tfc.Tensor2D;
    const losses: Array<number | tfc.Scalar> = [];
    const parts: tfc.Tensor2D[] = [];
    for (const chunk of chunks) {
      const { loss, dh } = chunkLoss(h, chunk);
      losses.push(loss);
      if (dh) parts.push(dh);
    }
    // Scatter the trained rows back into [N, H], zero elsewhere: padding when they are one run of rows (a causal
    // LM trains on every token but the last), else a gather whose untrained rows pick a zero row at the end.
    const dh = tf.tidy(() => {
      const first = rows[0] ?? 0;
      if (isRun(rows)) return tf.pad(tf.concat(parts.length > 0 ? parts : [tf.zeros([0, H])], 0), [[first, N - first - rows.length], [0, 0]]) as tfc.Tensor2D;
      const stacked = tf.concat([...parts, tf.zeros([1, H])], 0);
      const index = new Int32Array(N).fill(rows.length);
      rows.forEach((row, i) => (index[row] = i));
      return tf.gather(stacked, tf.tensor1d(index, "int32")) as tfc.Tensor2D;
    });
    tf.dispose(parts);
    // Kept (cloned) by the engine for the backward pass; freed here, since without a tape nothing keeps it.
    (inputs[1] as tfc.GradSaveFunc)([dh]);
    dh.dispose();
    return {
      value: sum(losses),
      gradFunc: (dy: tfc.Tensor, saved: tfc.Tensor[]) => tf.mul(saved[0] as tfc.Tensor2D, dy),
    };
  });
  return lossFn(hidden) as tfc.Scalar;
}

/** Whether the backend can read a result back synchronously (WebGPU in Node cannot: it has no OffscreenCanvas). */
export function readsBackSynchronously(tf: Tf): boolean {
  return tf.getBackend() !== "webgpu";
}

/** True when `rows` is ascending consecutive integers (or empty). */
function isRun(rows: number[]): boolean {
  return rows.length === 0 || (rows[rows.length - 1] ?? 0) - (rows[0] ?? 0) === rows.length - 1;
}

/** Rows of a [N, H] matrix: a slice when they are one run, else a gather. */
function rowsOf(tf: Tf, h: tfc.Tensor2D, rows: number[]): tfc.Tensor2D {
  if (isRun(rows)) return tf.slice(h, [rows[0] ?? 0, 0], [rows.length, h.shape[1]]);
  return tf.gather(h, tf.tensor1d(rows, "int32"));
}

/** m[i, targets[i]] for every row i of a [rows, vocab] matrix. */
function pickTargets(tf: Tf, m: tfc.Tensor2D, targets: number[]): tfc.Tensor1D {
  const V = m.shape[1];
  return tf.gather(tf.reshape(m, [-1]), tf.tensor1d(targets.map((t, i) => i * V + t), "int32")) as tfc.Tensor1D;
}

/** Σ weight · (logsumexp(logits) − logit_target) for some rows of a chunk, in float32 on the backend. */
function exactLoss(tf: Tf, model: CausalLM, input: tfc.Tensor2D, rows: number[], targets: number[], weights: number[]): number {
  return tf.tidy(() => {
    const logits = model.lmHead(tf.gather(input, tf.tensor1d(rows, "int32")) as tfc.Tensor2D);
    const ce = tf.sub(tf.logSumExp(logits, 1), pickTargets(tf, logits, rows.map((row) => targets[row] ?? 0)));
    return tf.sum(tf.mul(ce, tf.tensor1d(rows.map((row) => weights[row] ?? 0)))).dataSync()[0] ?? 0;
  });
}
