/** Rotary position embeddings in Hugging Face's split-halves layout (dimension i pairs with i + d/2). */
export type RopeSpec =
  | { type: "default"; theta: number }
  | { type: "linear"; theta: number; factor: number }
  | { type: "llama3"; theta: number; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  /**
   * Phi-3's LongRoPE: each frequency divided by its short factor, or by its long factor once the sequence is longer
   * than originalMaxPositions; cos and sin are multiplied by attentionFactor.
   */
  | { type: "longrope"; theta: number; shortFactor: number[]; longFactor: number[]; originalMaxPositions: number; attentionFactor: number };

const f = Math.fround;

/**
 * inv_freq[i] = θ^(-2i/d), computed in float32 as transformers does, then rescaled: linear divides by the
 * factor; llama3 keeps short wavelengths, divides long ones by the factor and blends in between.
 */
export function ropeInverseFrequencies(spec: RopeSpec, headDim: number, factors: "short" | "long" = "short"): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(half);
  if (spec.type === "longrope") {
    // 1 / (factor · θ^(2i/d)), each step in float32 as transformers' _compute_longrope_parameters.
    const ext = factors === "long" ? spec.longFactor : spec.shortFactor;
    for (let i = 0; i < half; i += 1) out[i] = f(1 / f(f(ext[i] ?? 1) * f(f(spec.theta) ** f((2 * i) / headDim))));
    return out;
  }
  for (let i = 0; i < half; i += 1) out[i] = f(1 / f(f(spec.theta) ** f((2 * i) / headDim)));
  if (spec.type === "linear") {
    for (let i = 0; i < half; i += 1) out[i] = f((out[i] ?? 0) / spec.factor);
  } else if (spec.type === "llama3") {
    const lowWavelen = spec.originalMaxPositions / spec.lowFreqFactor;
    const highWavelen = spec.originalMaxPositions / spec.highFreqFactor;
    for (let i = 0; i < half; i += 1) {
      const inv = out[i] ?? 0;
      const wavelen = (2 * Math.PI) / inv;
      if (wavelen < highWavelen) continue;
      if (wavelen > lowWavelen) {
        out[i] = f(inv / spec.factor);
        continue;
      }
      const smooth = (spec.originalMaxPositions / wavelen - spec.lowFreqFactor) / (spec.highFreqFactor - spec.lowFreqFactor);
      out[i] = f((1 - smooth) * (inv / spec.factor) + smooth * inv);
    }
  }
  return out;
}

/**
 * cos and sin tables for the given positions, shape [positions.length, headDim] (each half repeated),
 * with the angle rounded to float32 like transformers' float32 matmul of positions by inv_freq; both times
 * `scale` (the queries fold attention's 1/√headDim in here).
 */
export function ropeTables(invFreq: Float32Array, positions: ArrayLike<number>, scale = 1): { cos: Float32Array; sin: Float32Array } {
  const half = invFreq.length;
  const dim = half * 2;
  const cos = new Float32Array(positions.length * dim);
  const sin = new Float32Array(positions.length * dim);
  for (let p = 0; p < positions.length; p += 1) {
    const position = positions[p] ?? 0;
    for (let i = 0; i < half; i += 1) {
      const angle = f(position * (invFreq[i] ?? 0));
      const c = Math.cos(angle) * scale;
      const s = Math.sin(angle) * scale;
      cos[p * dim + i] = c;
      cos[p * dim + half + i] = c;
      sin[p * dim + i] = s;
      sin[p * dim + half + i] = s;
    }
  }
  return { cos, sin };
}


/**
 * Tables [positions.length, headDim] for a head whose first `rotaryDim` dimensions rotate (Phi-3's partial rotary;
 * rotaryDim = 2 · invFreq.length): there cos and sin come from ropeTables times `attentionFactor` (LongRoPE's
 * scaling), the remaining dimensions pass through (cos = 1, sin = 0); everything times `scale`.
 */
export function headRopeTables(invFreq: Float32Array, positions: ArrayLike<number>, options: { headDim: number; scale?: number; attentionFactor?: number }): { cos: Float32Array; sin: Float32Array } {
  const scale = options.scale ?? 1;
  const factor = options.attentionFactor ?? 1;
  const rotary = ropeTables(invFreq, positions, scale * factor);
  const rotaryDim = invFreq.length * 2;
  if (rotaryDim === options.headDim) return rotary;
  const cos = new Float32Array(positions.length * options.headDim).fill(scale);
  const sin = new Float32Array(positions.length * options.headDim);
  for (let p = 0; p < positions.length; p += 1) {
    cos.set(rotary.cos.subarray(p * rotaryDim, (p + 1) * rotaryDim), p * options.headDim);
    sin.set(rotary.sin.subarray(p * rotaryDim, (p + 1) * rotaryDim), p * options.headDim);
  }
  return { cos, sin };
}
