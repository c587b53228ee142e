/**
 * A plain float64 reference forward pass for Gemma 2 and Gemma 3 (text), written from transformers'
 * modeling_gemma2.py / modeling_gemma3.py (Gemma2ForCausalLM, Gemma3ForCausalLM) and masking_utils.py — not from
 * src/. One token at a time, nested loops; the models it runs are tiny.
 *
 * `ablate` switches one Gemma-specific piece back to the "obvious" Llama-like behaviour, so tests can show that each
 * piece moves the logits (and so that this reference would catch its absence).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeBF16, decodeF16, readSafetensors, type RefTensor } from "./reference-model.js";
import { encodeBF16, encodeF16 } from "./tiny-checkpoint.js";

export interface GemmaAblation {
  /** RMSNorm scales by w instead of 1 + w. */
  plainNorm?: boolean;
  /** Local layers use the global RoPE base. */
  globalRopeEverywhere?: boolean;
  /** Neither soft-cap is applied. */
  noSoftcap?: boolean;
  /** Embeddings are not multiplied by √hidden. */
  noEmbedScale?: boolean;
  /** Another activation in place of gelu_pytorch_tanh (e.g. llama.cpp's f16-table GELU). */
  gelu?: (x: number) => number;
}

type Json = Record<string, unknown>;

function numberOr(value: unknown, fallback: number): number {
  return typeof value === "number" ? value : fallback;
}

function rmsNorm(x: Float64Array, w: Float64Array, eps: number, plain: boolean): Float64Array {
  let sum = 0;
  for (const v of x) sum += v * v;
  const r = 1 / Math.sqrt(sum / x.length + eps);
  return x.map((v, i) => v * r * (plain ? (w[i] ?? 0) : 1 + (w[i] ?? 0)));
}

/** nn.Linear: W [out, in]. */
function linear(x: Float64Array, w: Float64Array, out: number): Float64Array {
  const inDim = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o += 1) {
    let sum = 0;
    for (let i = 0; i < inDim; i += 1) sum += (w[o * inDim + i] ?? 0) * (x[i] ?? 0);
    y[o] = sum;
  }
  return y;
}

/** gelu_pytorch_tanh. */
function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/** Split-halves rotary embedding of one head vector at a position. */
function rope(x: Float64Array, invFreq: Float64Array, position: number): Float64Array {
  const half = invFreq.length;
  const out = new Float64Array(x.length);
  for (let i = 0; i < half; i += 1) {
    const angle = position * (invFreq[i] ?? 0);
    const a = x[i] ?? 0;
    const b = x[i + half] ?? 0;
    out[i] = a * Math.cos(angle) - b * Math.sin(angle);
    out[i + half] = b * Math.cos(angle) + a * Math.sin(angle);
  }
  return out;
}

function invFreqOf(theta: number, dim: number, linearFactor: number): Float64Array {
  return Float64Array.from({ length: dim / 2 }, (_, i) => 1 / theta ** ((2 * i) / dim) / linearFactor);
}

function ropeFactor(entry: unknown): number {
  if (typeof entry !== "object" || entry === null) return 1;
  const e = entry as Json;
  const type = e.rope_type ?? e.type ?? "default";
  if (type === "default") return 1;
  if (type === "linear") return numberOr(e.factor, NaN);
  throw new Error(`reference-gemma: rope type ${String(type)} not implemented`);
}

/** Logits [T][vocab] for the ids, every position. */
export function referenceGemmaLogits(dir: string, ids: number[], ablate: GemmaAblation = {}): Float64Array[] {
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Json;
  const weights = readSafetensors(join(dir, "model.safetensors"));
  const get = (name: string): RefTensor => {
    const t = weights.get(name);
    if (!t) throw new Error(`reference-gemma: missing ${name}`);
    return t;
  };
  const gemma3 = cfg.model_type === "gemma3_text";
  const H = numberOr(cfg.hidden_size, NaN);
  const V = numberOr(cfg.vocab_size, NaN);
  const L = numberOr(cfg.num_hidden_layers, NaN);
  const heads = numberOr(cfg.num_attention_heads, NaN);
  const kvHeads = numberOr(cfg.num_key_value_heads, heads);
  const hd = numberOr(cfg.head_dim, 256);
  const I = numberOr(cfg.intermediate_size, NaN);
  const eps = numberOr(cfg.rms_norm_eps, 1e-6);
  const window = numberOr(cfg.sliding_window, 4096);
  const scaling = numberOr(cfg.query_pre_attn_scalar, 256) ** -0.5;
  // Absent keys take the config classes' defaults (Gemma 2: 50 and 30; Gemma 3: None); an explicit null is none.
  const cap = (key: string, gemma2Default: number): number | null => {
    const value = cfg[key];
    if (ablate.noSoftcap) return null;
    if (value === undefined) return gemma3 ? null : gemma2Default;
    return typeof value === "number" ? value : null;
  };
  // Gemma3Attention.forward never passes attn_logit_softcapping on to the attention function: no cap for Gemma 3.
  const attnCap = gemma3 ? null : cap("attn_logit_softcapping", 50);
  const finalCap = cap("final_logit_softcapping", 30);
  const plain = ablate.plainNorm ?? false;

  // Layer kinds: config.layer_types, else Gemma 3's sliding_window_pattern ((i+1) % pattern != 0 is sliding),
  // else Gemma 2's `is_sliding = not bool(layer_idx % 2)`.
  const layerTypes = cfg.layer_types as string[] | undefined;
  const pattern = numberOr(cfg.sliding_window_pattern, 6);
  const isLocal = (l: number) => (layerTypes ? layerTypes[l] === "sliding_attention" : gemma3 ? (l + 1) % pattern !== 0 : l % 2 === 0);

  // RoPE: Gemma 3 global layers rope_theta + rope_scaling, local rope_local_base_freq; or rope_parameters per
  // layer type; Gemma 2 one rope_theta.
  let globalInv: Float64Array;
  let localInv: Float64Array;
  const params = cfg.rope_parameters as Record<string, Json> | undefined;
  if (gemma3 && params?.full_attention && params.sliding_attention) {
    globalInv = invFreqOf(numberOr(params.full_attention.rope_theta, 1e6), hd, ropeFactor(params.full_attention));
    localInv = invFreqOf(numberOr(params.sliding_attention.rope_theta, 1e4), hd, ropeFactor(params.sliding_attention));
  } else if (gemma3) {
    globalInv = invFreqOf(numberOr(cfg.rope_theta, 1e6), hd, ropeFactor(cfg.rope_scaling));
    localInv = invFreqOf(numberOr(cfg.rope_local_base_freq, 1e4), hd, 1);
  } else {
    globalInv = invFreqOf(numberOr(cfg.rope_theta, 1e4), hd, 1);
    localInv = globalInv;
  }
  if (ablate.globalRopeEverywhere) localInv = globalInv;

  // √hidden as a float32 scalar cast to the embedding's dtype (Gemma3TextScaledWordEmbedding).
  const embedding = get("model.embed_tokens.weight");
  let scale = Math.fround(Math.sqrt(H));
  if (embedding.dtype === "BF16") scale = decodeBF16(encodeBF16(scale));
  if (embedding.dtype === "F16") scale = decodeF16(encodeF16(scale));
  if (ablate.noEmbedScale) scale = 1;
  const head = weights.get("lm_head.weight") ?? embedding;

  const T = ids.length;
  let xs: Float64Array[] = ids.map((id) => Float64Array.from(embedding.data.subarray(id * H, (id + 1) * H), (v) => v * scale));
  for (let l = 0; l < L; l += 1) {
    const p = `model.layers.${l}.`;
    const w = (name: string) => get(p + name).data;
    const local = isLocal(l);
    const inv = local ? localInv : globalInv;
    const qs: Float64Array[][] = [];
    const ks: Float64Array[][] = [];
    const vs: Float64Array[][] = [];
    for (let t = 0; t < T; t += 1) {
      const h = rmsNorm(xs[t] as Float64Array, w("input_layernorm.weight"), eps, plain);
      const q = linear(h, w("self_attn.q_proj.weight"), heads * hd);
      const k = linear(h, w("self_attn.k_proj.weight"), kvHeads * hd);
      const v = linear(h, w("self_attn.v_proj.weight"), kvHeads * hd);
      const headOf = (x: Float64Array, n: number) => x.slice(n * hd, (n + 1) * hd);
      qs.push(
        Array.from({ length: heads }, (_, n) => {
          const qh = gemma3 ? rmsNorm(headOf(q, n), w("self_attn.q_norm.weight"), eps, plain) : headOf(q, n);
          return rope(qh, inv, t);
        }),
      );
      ks.push(
        Array.from({ length: kvHeads }, (_, n) => {
          const kh = gemma3 ? rmsNorm(headOf(k, n), w("self_attn.k_norm.weight"), eps, plain) : headOf(k, n);
          return rope(kh, inv, t);
        }),
      );
      vs.push(Array.from({ length: kvHeads }, (_, n) => headOf(v, n)));
    }
    const next: Float64Array[] = [];
    for (let i = 0; i < T; i += 1) {
      const attended = new Float64Array(heads * hd);
      for (let n = 0; n < heads; n += 1) {
        const g = Math.floor(n / (heads / kvHeads));
        // Visible keys: causal j ≤ i, and in local layers kv_idx > q_idx - sliding_window (masking_utils.py).
        const visible: number[] = [];
        for (let j = 0; j <= i; j += 1) if (!local || j > i - window) visible.push(j);
        const scores = visible.map((j) => {
          let dot = 0;
          const qv = qs[i]?.[n] as Float64Array;
          const kvec = ks[j]?.[g] as Float64Array;
          for (let d = 0; d < hd; d += 1) dot += (qv[d] ?? 0) * (kvec[d] ?? 0);
          const s = dot * scaling;
          return attnCap === null ? s : attnCap * Math.tanh(s / attnCap);
        });
        const max = Math.max(...scores);
        const exps = scores.map((s) => Math.exp(s - max));
        const total = exps.reduce((a, b) => a + b, 0);
        visible.forEach((j, m) => {
          const p = (exps[m] ?? 0) / total;
          const vv = vs[j]?.[g] as Float64Array;
          for (let d = 0; d < hd; d += 1) attended[n * hd + d] = (attended[n * hd + d] ?? 0) + p * (vv[d] ?? 0);
        });
      }
      const o = linear(attended, w("self_attn.o_proj.weight"), H);
      const postAttention = rmsNorm(o, w("post_attention_layernorm.weight"), eps, plain);
      const x1 = (xs[i] as Float64Array).map((v, d) => v + (postAttention[d] ?? 0));
      const h2 = rmsNorm(x1, w("pre_feedforward_layernorm.weight"), eps, plain);
      const gate = linear(h2, w("mlp.gate_proj.weight"), I);
      const up = linear(h2, w("mlp.up_proj.weight"), I);
      const act = gate.map((gv, d) => (ablate.gelu ?? gelu)(gv) * (up[d] ?? 0));
      const down = linear(act, w("mlp.down_proj.weight"), H);
      const postFeedforward = rmsNorm(down, w("post_feedforward_layernorm.weight"), eps, plain);
      next.push(x1.map((v, d) => v + (postFeedforward[d] ?? 0)));
    }
    xs = next;
  }
  const finalNorm = get("model.norm.weight").data;
  return xs.map((x) => {
    const logits = linear(rmsNorm(x, finalNorm, eps, plain), head.data, V);
    return finalCap === null ? logits : logits.map((z) => finalCap * Math.tanh(z / finalCap));
  });
}
