/**
 * A deliberately plain reference forward pass: float64, nested loops, no tfjs.
 *
 * It exists so tests can check the real (tfjs) implementation against something written independently from
 * FORMATS.md and Hugging Face transformers' modeling_llama.py / modeling_mistral.py / modeling_qwen2.py /
 * modeling_gpt2.py and modeling_rope_utils.py. Readability beats speed: the models it runs are tiny.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** One decoded tensor; values are widened to float64 whatever the stored dtype was. */
export interface RefTensor {
  dtype: string;
  shape: number[];
  data: Float64Array;
}

type Json = Record<string, unknown>;
type Weights = Map<string, RefTensor>;

// ---------------------------------------------------------------------------------------------------------------
// safetensors

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** IEEE 754 binary16 → number. Written out by hand because Node 20 has no Float16Array. */
export function decodeF16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** bfloat16 → number: the 16 bits are the high half of a float32. */
export function decodeBF16(bits: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, (bits & 0xffff) << 16 >>> 0, false);
  return view.getFloat32(0, false);
}

/**
 * Reads a whole .safetensors file. Float tensors (F64/F32/F16/BF16) are decoded; integer and bool buffers (e.g.
 * GPT-2's causal-mask `attn.bias` in some exports) are skipped because no forward pass reads them.
 */
export function readSafetensors(path: string): Map<string, RefTensor> {
  const file = readFileSync(path);
  if (file.length < 8) throw new Error(`${path}: too short for a safetensors file`);
  const headerLength = Number(file.readBigUInt64LE(0));
  if (8 + headerLength > file.length) throw new Error(`${path}: header length ${headerLength} runs past the end`);
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, unknown>;
  const dataStart = 8 + headerLength;
  const dataLength = file.length - dataStart;
  const out = new Map<string, RefTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const info = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = String(info.dtype);
    const shape = info.shape as number[];
    const offsets = info.data_offsets as [number, number];
    const count = shape.reduce((a, b) => a * b, 1);
    const size = DTYPE_BYTES[dtype];
    if (size === undefined) throw new Error(`${path}: ${name} has unknown dtype ${dtype}`);
    const [begin, end] = offsets;
    if (begin < 0 || end > dataLength || end - begin !== count * size) {
      throw new Error(`${path}: ${name} has bad data_offsets [${begin}, ${end}] for ${dtype}${JSON.stringify(shape)}`);
    }
    const at = dataStart + begin;
    const data = new Float64Array(count);
    if (dtype === "F32") for (let i = 0; i < count; i++) data[i] = file.readFloatLE(at + 4 * i);
    else if (dtype === "F64") for (let i = 0; i < count; i++) data[i] = file.readDoubleLE(at + 8 * i);
    else if (dtype === "F16") for (let i = 0; i < count; i++) data[i] = decodeF16(file.readUInt16LE(at + 2 * i));
    else if (dtype === "BF16") for (let i = 0; i < count; i++) data[i] = decodeBF16(file.readUInt16LE(at + 2 * i));
    else continue;
    out.set(name, { dtype, shape, data });
  }
  return out;
}

/** Loads model.safetensors, or every shard named by model.safetensors.index.json. */
function loadWeights(dir: string): Weights {
  const single = join(dir, "model.safetensors");
  if (existsSync(single)) return readSafetensors(single);
  const indexPath = join(dir, "model.safetensors.index.json");
  if (!existsSync(indexPath)) throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json`);
  const index = JSON.parse(readFileSync(indexPath, "utf8")) as { weight_map: Record<string, string> };
  const weights: Weights = new Map();
  for (const shard of new Set(Object.values(index.weight_map))) {
    for (const [name, tensor] of readSafetensors(join(dir, shard))) weights.set(name, tensor);
  }
  return weights;
}

function tensor(weights: Weights, name: string, shape: number[]): Float64Array {
  const t = weights.get(name);
  if (t === undefined) throw new Error(`reference: missing tensor ${name}`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`reference: ${name} has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`);
  }
  return t.data;
}

// ---------------------------------------------------------------------------------------------------------------
// config helpers

function num(cfg: Json, key: string, fallback?: number): number {
  const value = cfg[key];
  if (typeof value === "number") return value;
  if ((value === undefined || value === null) && fallback !== undefined) return fallback;
  throw new Error(`reference: config.${key} missing or not a number (${JSON.stringify(value)})`);
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------------------------
// small float64 building blocks

/** torch.nn.Linear: weight stored [out, in], y = W x + b. */
function linear(x: Float64Array, w: Float64Array, outDim: number, bias?: Float64Array): Float64Array {
  const inDim = x.length;
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let sum = bias === undefined ? 0 : bias[o] ?? 0;
    for (let i = 0; i < inDim; i++) sum += (w[o * inDim + i] ?? 0) * (x[i] ?? 0);
    y[o] = sum;
  }
  return y;
}

/** GPT-2's Conv1D: weight stored [in, out], y = x W + b. */
function conv1d(x: Float64Array, w: Float64Array, outDim: number, bias: Float64Array): Float64Array {
  const inDim = x.length;
  const y = new Float64Array(outDim);
  for (let o = 0; o < outDim; o++) {
    let sum = bias[o] ?? 0;
    for (let i = 0; i < inDim; i++) sum += (w[i * outDim + o] ?? 0) * (x[i] ?? 0);
    y[o] = sum;
  }
  return y;
}

function rmsNorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let sumSq = 0;
  for (const v of x) sumSq += v * v;
  const inv = 1 / Math.sqrt(sumSq / x.length + eps);
  return x.map((v, i) => (w[i] ?? 0) * v * inv);
}

function layerNorm(x: Float64Array, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let variance = 0; // biased, as torch.nn.LayerNorm
  for (const v of x) variance += (v - mean) ** 2;
  variance /= x.length;
  const inv = 1 / Math.sqrt(variance + eps);
  return x.map((v, i) => (v - mean) * inv * (w[i] ?? 0) + (b[i] ?? 0));
}

function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}

/** gelu_new / gelu_pytorch_tanh: the tanh approximation GPT-2 was trained with. */
function geluTanh(v: number): number {
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
}

function softmaxInPlace(scores: number[]): void {
  const max = Math.max(...scores);
  let total = 0;
  for (let i = 0; i < scores.length; i++) {
    const e = Math.exp((scores[i] ?? 0) - max);
    scores[i] = e;
    total += e;
  }
  for (let i = 0; i < scores.length; i++) scores[i] = (scores[i] ?? 0) / total;
}

function add(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v + (b[i] ?? 0));
}

/**
 * Causal multi-head attention over already-projected (and already rotated) q/k/v rows.
 * q[t] holds `heads` heads of `headDim`, k[t]/v[t] hold `kvHeads` heads; query head h reads kv head
 * floor(h / (heads / kvHeads)), which is what repeat_kv does. `window` (if any) keeps keys with t - j < window.
 */
function attention(
  q: Float64Array[],
  k: Float64Array[],
  v: Float64Array[],
  heads: number,
  kvHeads: number,
  headDim: number,
  scale: number,
  window: number | null,
): Float64Array[] {
  const group = heads / kvHeads;
  return q.map((qt, t) => {
    const out = new Float64Array(heads * headDim);
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / group);
      const keys: number[] = [];
      for (let j = 0; j <= t; j++) if (window === null || t - j < window) keys.push(j);
      const scores = keys.map((j) => {
        const kj = k[j] ?? new Float64Array(0);
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += (qt[h * headDim + d] ?? 0) * (kj[kvh * headDim + d] ?? 0);
        return dot * scale;
      });
      softmaxInPlace(scores);
      keys.forEach((j, n) => {
        const vj = v[j] ?? new Float64Array(0);
        const p = scores[n] ?? 0;
        for (let d = 0; d < headDim; d++) out[h * headDim + d] = (out[h * headDim + d] ?? 0) + p * (vj[kvh * headDim + d] ?? 0);
      });
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// RoPE

/**
 * inv_freq for the rotary embedding, following modeling_rope_utils.py: default, "linear" (inv_freq / factor) and
 * "llama3" (_compute_llama3_parameters). Reads the newer `rope_parameters` object (rope_type and rope_theta inside)
 * or the older top-level `rope_theta` + `rope_scaling` (whose type key may be `rope_type` or legacy `type`).
 */
export function ropeInvFreq(cfg: Json, dim: number): Float64Array {
  let theta: number;
  let scaling: Json | null;
  const params = cfg.rope_parameters;
  if (isObject(params)) {
    theta = num(params, "rope_theta", num(cfg, "rope_theta", defaultTheta(cfg)));
    scaling = params;
  } else {
    theta = num(cfg, "rope_theta", defaultTheta(cfg));
    scaling = isObject(cfg.rope_scaling) ? cfg.rope_scaling : null;
  }
  const type = String(scaling?.rope_type ?? scaling?.type ?? "default");

  const invFreq = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) invFreq[i] = 1 / theta ** ((2 * i) / dim);
  if (type === "default" || scaling === null) return invFreq;

  if (type === "linear") {
    const factor = num(scaling, "factor");
    return invFreq.map((f) => f / factor);
  }

  if (type === "llama3") {
    const factor = num(scaling, "factor");
    const lowFreqFactor = num(scaling, "low_freq_factor");
    const highFreqFactor = num(scaling, "high_freq_factor");
    const oldContextLen = num(scaling, "original_max_position_embeddings");
    const lowFreqWavelen = oldContextLen / lowFreqFactor;
    const highFreqWavelen = oldContextLen / highFreqFactor;
    return invFreq.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      // Long wavelengths (low frequencies) are slowed down by `factor`; short ones are kept as they are.
      const scaled = wavelen > lowFreqWavelen ? f / factor : f;
      const isMedium = !(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen);
      if (!isMedium) return scaled;
      // In between, blend the two so the transition is smooth.
      const smooth = (oldContextLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      return ((1 - smooth) * scaled) / factor + smooth * scaled;
    });
  }

  throw new Error(`reference: rope type ${type} is not supported`);
}

/**
 * LongRoPE (modeling_rope_utils' _compute_longrope_parameters): inv_freq[i] = 1 / (ext[i] · θ^(2i/dim)) with the long
 * factors for a sequence longer than the original context, the short ones otherwise; cos and sin scaled by the
 * attention factor, √(1 + ln(factor) / ln(original)) unless the config gives it, factor = max / original positions.
 * Null without longrope scaling.
 */
function longRopeFor(cfg: Json, dim: number, length: number): { invFreq: Float64Array; attentionFactor: number } | null {
  const scaling = isObject(cfg.rope_scaling) ? cfg.rope_scaling : null;
  const type = String(scaling?.rope_type ?? scaling?.type ?? "default");
  if (scaling === null || (type !== "longrope" && type !== "su")) return null;
  const maxPositions = num(cfg, "max_position_embeddings");
  const configOriginal = typeof cfg.original_max_position_embeddings === "number" ? cfg.original_max_position_embeddings : null;
  const original = configOriginal ?? maxPositions;
  const factor = configOriginal !== null ? maxPositions / configOriginal : typeof scaling.factor === "number" ? scaling.factor : 1;
  const attentionFactor = typeof scaling.attention_factor === "number" ? scaling.attention_factor : factor > 1 ? Math.sqrt(1 + Math.log(factor) / Math.log(original)) : 1;
  const ext = (length > original ? scaling.long_factor : scaling.short_factor) as number[];
  const theta = num(cfg, "rope_theta", 10000);
  const invFreq = new Float64Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) invFreq[i] = 1 / ((ext[i] ?? NaN) * theta ** ((2 * i) / dim));
  return { invFreq, attentionFactor };
}

/** rope_theta when the config leaves it out: SmolLM3Config's default_theta, else 10000. */
function defaultTheta(cfg: Json): number {
  return cfg.model_type === "smollm3" ? 2000000 : 10000;
}

/** HF layout: dimension i pairs with i + d/2 (rotate_half), cos/sin = cat(freqs, freqs). Rotates each head. */
function applyRope(x: Float64Array, heads: number, headDim: number, position: number, invFreq: Float64Array, factor = 1): Float64Array {
  // Partial rotary (Phi-3): only the first 2·invFreq.length dimensions of each head rotate; the rest pass through.
  const out = Float64Array.from(x);
  const half = invFreq.length;
  for (let h = 0; h < heads; h++) {
    const base = h * headDim;
    for (let i = 0; i < half; i++) {
      const angle = position * (invFreq[i] ?? 0);
      const cos = Math.cos(angle) * factor;
      const sin = Math.sin(angle) * factor;
      const a = x[base + i] ?? 0;
      const b = x[base + i + half] ?? 0;
      out[base + i] = a * cos - b * sin;
      out[base + i + half] = b * cos + a * sin;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Llama / Mistral / Qwen2

/** Which layers use sliding-window attention, and with what window (null = full causal attention). */
function slidingWindowFor(cfg: Json, modelType: string, layer: number): number | null {
  const window = typeof cfg.sliding_window === "number" ? cfg.sliding_window : null;
  if (window === null) return null;
  const layerTypes = cfg.layer_types;
  if (Array.isArray(layerTypes)) return layerTypes[layer] === "sliding_attention" ? window : null;
  if (modelType === "mistral" || modelType === "phi3") return window;
  if (modelType === "qwen2" || modelType === "qwen3") {
    // Qwen2/Qwen3 checkpoints carry a sliding_window but only use it when use_sliding_window is on, and then only
    // from layer max_window_layers onwards.
    return cfg.use_sliding_window === true && layer >= num(cfg, "max_window_layers", 28) ? window : null;
  }
  return null;
}

function llamaLogits(cfg: Json, weights: Weights, ids: number[]): Float64Array[] {
  const modelType = String(cfg.model_type);
  const vocab = num(cfg, "vocab_size");
  const hidden = num(cfg, "hidden_size");
  const inter = num(cfg, "intermediate_size");
  const layers = num(cfg, "num_hidden_layers");
  const heads = num(cfg, "num_attention_heads");
  const kvHeads = num(cfg, "num_key_value_heads", heads);
  const headDim = num(cfg, "head_dim", hidden / heads);
  const eps = num(cfg, "rms_norm_eps", 1e-6);
  // SmolLM3Config ties the embeddings unless told otherwise; the others untie them.
  const tied = typeof cfg.tie_word_embeddings === "boolean" ? cfg.tie_word_embeddings : modelType === "smollm3";
  // Qwen2 always has q/k/v biases (and no o bias); Llama, Qwen3 and SmolLM3 have all four iff attention_bias;
  // Mistral has none. MLP biases: Llama and SmolLM3 (mlp_bias).
  const attentionBias = ["llama", "qwen3", "smollm3"].includes(modelType) && cfg.attention_bias === true;
  const qkvBias = modelType === "qwen2" || attentionBias;
  const oBias = attentionBias;
  const mlpBias = (modelType === "llama" || modelType === "smollm3") && cfg.mlp_bias === true;
  // Qwen3: RMSNorm over each head of q and k (weights [head_dim]) before RoPE.
  const qkNorm = modelType === "qwen3";
  // SmolLM3: RoPE only on the layers no_rope_layers marks 1 (by default every 4th layer is NoPE).
  const usesRope = (layer: number): boolean => {
    if (modelType !== "smollm3") return true;
    if (Array.isArray(cfg.no_rope_layers)) return cfg.no_rope_layers[layer] === 1;
    return (layer + 1) % num(cfg, "no_rope_layer_interval", 4) !== 0;
  };
  // Phi-3: fused qkv_proj / gate_up_proj, rotary on int(head_dim · partial_rotary_factor) dimensions, LongRoPE.
  const phi3 = modelType === "phi3";
  const rotaryDim = Math.floor(headDim * num(cfg, "partial_rotary_factor", 1));
  const longRope = phi3 ? longRopeFor(cfg, rotaryDim, ids.length) : null;
  const invFreq = longRope?.invFreq ?? ropeInvFreq(cfg, rotaryDim);
  const ropeFactor = longRope?.attentionFactor ?? 1;
  const scale = headDim ** -0.5;

  const embed = tensor(weights, "model.embed_tokens.weight", [vocab, hidden]);
  let x: Float64Array[] = ids.map((id) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`reference: token id ${id} out of range`);
    return embed.slice(id * hidden, (id + 1) * hidden);
  });

  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    const get = (name: string, shape: number[]): Float64Array => tensor(weights, p + name, shape);
    const maybe = (on: boolean, name: string, size: number): Float64Array | undefined => (on ? get(name, [size]) : undefined);
    const qRows = heads * headDim * hidden;
    const kvRows = kvHeads * headDim * hidden;
    const qkv = phi3 ? get("self_attn.qkv_proj.weight", [(heads + 2 * kvHeads) * headDim, hidden]) : null;
    const wq = qkv ? qkv.slice(0, qRows) : get("self_attn.q_proj.weight", [heads * headDim, hidden]);
    const wk = qkv ? qkv.slice(qRows, qRows + kvRows) : get("self_attn.k_proj.weight", [kvHeads * headDim, hidden]);
    const wv = qkv ? qkv.slice(qRows + kvRows) : get("self_attn.v_proj.weight", [kvHeads * headDim, hidden]);
    const wo = get("self_attn.o_proj.weight", [hidden, heads * headDim]);
    const bq = maybe(qkvBias, "self_attn.q_proj.bias", heads * headDim);
    const bk = maybe(qkvBias, "self_attn.k_proj.bias", kvHeads * headDim);
    const bv = maybe(qkvBias, "self_attn.v_proj.bias", kvHeads * headDim);
    const bo = maybe(oBias, "self_attn.o_proj.bias", hidden);
    const inNorm = get("input_layernorm.weight", [hidden]);
    const postNorm = get("post_attention_layernorm.weight", [hidden]);
    // gate_up_proj's output is [gate | up] (Phi3MLP chunks it in two, gate first).
    const gateUp = phi3 ? get("mlp.gate_up_proj.weight", [2 * inter, hidden]) : null;
    const wGate = gateUp ? gateUp.slice(0, inter * hidden) : get("mlp.gate_proj.weight", [inter, hidden]);
    const wUp = gateUp ? gateUp.slice(inter * hidden) : get("mlp.up_proj.weight", [inter, hidden]);
    const wDown = get("mlp.down_proj.weight", [hidden, inter]);
    const bGate = maybe(mlpBias, "mlp.gate_proj.bias", inter);
    const bUp = maybe(mlpBias, "mlp.up_proj.bias", inter);
    const bDown = maybe(mlpBias, "mlp.down_proj.bias", hidden);

    const qNorm = qkNorm ? get("self_attn.q_norm.weight", [headDim]) : null;
    const kNorm = qkNorm ? get("self_attn.k_norm.weight", [headDim]) : null;
    /** Per-head RMSNorm (Qwen3), then RoPE (unless a NoPE layer). */
    const position = (v: Float64Array, count: number, norm: Float64Array | null, t: number): Float64Array => {
      let out = v;
      if (norm) {
        out = new Float64Array(v.length);
        for (let h = 0; h < count; h++) out.set(rmsNorm(v.subarray(h * headDim, (h + 1) * headDim), norm, eps), h * headDim);
      }
      return usesRope(l) ? applyRope(out, count, headDim, t, invFreq, ropeFactor) : out;
    };
    const normed = x.map((row) => rmsNorm(row, inNorm, eps));
    const q = normed.map((h, t) => position(linear(h, wq, heads * headDim, bq), heads, qNorm, t));
    const k = normed.map((h, t) => position(linear(h, wk, kvHeads * headDim, bk), kvHeads, kNorm, t));
    const v = normed.map((h) => linear(h, wv, kvHeads * headDim, bv));
    const attn = attention(q, k, v, heads, kvHeads, headDim, scale, slidingWindowFor(cfg, modelType, l));
    x = x.map((row, t) => add(row, linear(attn[t] ?? new Float64Array(0), wo, hidden, bo)));

    x = x.map((row) => {
      const h = rmsNorm(row, postNorm, eps);
      const gate = linear(h, wGate, inter, bGate);
      const up = linear(h, wUp, inter, bUp);
      const act = gate.map((g, i) => silu(g) * (up[i] ?? 0));
      return add(row, linear(act, wDown, hidden, bDown));
    });
  }

  const finalNorm = tensor(weights, "model.norm.weight", [hidden]);
  let head: Float64Array;
  if (tied) head = embed;
  else if (weights.has("lm_head.weight")) head = tensor(weights, "lm_head.weight", [vocab, hidden]);
  else throw new Error("reference: tie_word_embeddings is false but there is no lm_head.weight");
  return x.map((row) => linear(rmsNorm(row, finalNorm, eps), head, vocab));
}

// ---------------------------------------------------------------------------------------------------------------
// GPT-2

function gpt2Logits(cfg: Json, weights: Weights, ids: number[], gelu: (x: number) => number): Float64Array[] {
  const vocab = num(cfg, "vocab_size");
  const hidden = num(cfg, "n_embd");
  const heads = num(cfg, "n_head");
  const layers = num(cfg, "n_layer");
  const positions = num(cfg, "n_positions");
  const inner = num(cfg, "n_inner", 4 * hidden);
  const eps = num(cfg, "layer_norm_epsilon", 1e-5);
  const act = String(cfg.activation_function ?? "gelu_new");
  if (act !== "gelu_new" && act !== "gelu_pytorch_tanh") throw new Error(`reference: activation ${act} is not supported`);
  const headDim = hidden / heads;
  const scaleWeights = cfg.scale_attn_weights !== false;
  const byLayerIdx = cfg.scale_attn_by_inverse_layer_idx === true;
  if (ids.length > positions) throw new Error(`reference: ${ids.length} tokens exceed n_positions ${positions}`);

  // Both `transformer.h.0...` (save_pretrained) and bare `h.0...` (the original openai-community/gpt2 file) exist.
  const prefix = weights.has("transformer.wte.weight") ? "transformer." : "";
  const get = (name: string, shape: number[]): Float64Array => tensor(weights, prefix + name, shape);

  const wte = get("wte.weight", [vocab, hidden]);
  const wpe = get("wpe.weight", [positions, hidden]);
  let x: Float64Array[] = ids.map((id, t) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`reference: token id ${id} out of range`);
    return wte.slice(id * hidden, (id + 1) * hidden).map((v, i) => v + (wpe[t * hidden + i] ?? 0));
  });

  for (let l = 0; l < layers; l++) {
    const p = `h.${l}.`;
    const ln1w = get(p + "ln_1.weight", [hidden]);
    const ln1b = get(p + "ln_1.bias", [hidden]);
    const attnW = get(p + "attn.c_attn.weight", [hidden, 3 * hidden]);
    const attnB = get(p + "attn.c_attn.bias", [3 * hidden]);
    const projW = get(p + "attn.c_proj.weight", [hidden, hidden]);
    const projB = get(p + "attn.c_proj.bias", [hidden]);
    const ln2w = get(p + "ln_2.weight", [hidden]);
    const ln2b = get(p + "ln_2.bias", [hidden]);
    const fcW = get(p + "mlp.c_fc.weight", [hidden, inner]);
    const fcB = get(p + "mlp.c_fc.bias", [inner]);
    const mlpProjW = get(p + "mlp.c_proj.weight", [inner, hidden]);
    const mlpProjB = get(p + "mlp.c_proj.bias", [hidden]);

    const qkv = x.map((row) => conv1d(layerNorm(row, ln1w, ln1b, eps), attnW, 3 * hidden, attnB));
    const q = qkv.map((r) => r.slice(0, hidden));
    const k = qkv.map((r) => r.slice(hidden, 2 * hidden));
    const v = qkv.map((r) => r.slice(2 * hidden, 3 * hidden));
    let scale = scaleWeights ? headDim ** -0.5 : 1;
    if (byLayerIdx) scale /= l + 1;
    const attn = attention(q, k, v, heads, heads, headDim, scale, null);
    x = x.map((row, t) => add(row, conv1d(attn[t] ?? new Float64Array(0), projW, hidden, projB)));

    x = x.map((row) => {
      const h = conv1d(layerNorm(row, ln2w, ln2b, eps), fcW, inner, fcB).map(gelu);
      return add(row, conv1d(h, mlpProjW, hidden, mlpProjB));
    });
  }

  const lnfW = get("ln_f.weight", [hidden]);
  const lnfB = get("ln_f.bias", [hidden]);
  // GPT2LMHeadModel ties lm_head to wte; only an explicitly untied config with its own lm_head differs.
  const head =
    cfg.tie_word_embeddings === false && weights.has("lm_head.weight") ? tensor(weights, "lm_head.weight", [vocab, hidden]) : wte;
  return x.map((row) => linear(layerNorm(row, lnfW, lnfB, eps), head, vocab));
}

// ---------------------------------------------------------------------------------------------------------------

/**
 * A checkpoint loaded once, with its weights open to edits (e.g. a LoRA update folded into a projection to take a
 * finite-difference derivative): `logits` always reads the current `weights`.
 */
export interface ReferenceModel {
  config: Json;
  weights: Map<string, RefTensor>;
  logits(ids: number[]): Float64Array[];
}

export function loadReference(dir: string, options: { gelu?: (x: number) => number } = {}): ReferenceModel {
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Json;
  const weights = loadWeights(dir);
  const modelType = String(config.model_type);
  return {
    config,
    weights,
    logits(ids) {
      if (ids.length === 0) throw new Error("reference: no input ids");
      if (["llama", "mistral", "qwen2", "qwen3", "smollm3", "phi3"].includes(modelType)) return llamaLogits(config, weights, ids);
      if (modelType === "gpt2") return gpt2Logits(config, weights, ids, options.gelu ?? geluTanh);
      throw new Error(`reference: model_type ${modelType} is not supported`);
    },
  };
}

/** Logits (one row of vocab_size per input position, positions 0..T-1) for the checkpoint in `dir`. */
export function referenceLogits(dir: string, ids: number[]): Float64Array[] {
  return loadReference(dir).logits(ids);
}

/** −log softmax(row)[target], in float64. */
export function crossEntropy(row: Float64Array, target: number): number {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  return max + Math.log(sum) - (row[target] ?? NaN);
}

/** Greedy (argmax) decoding with the reference, recomputing the whole prefix each step (fine for tiny models). */
export function referenceGreedy(dir: string, ids: number[], steps: number, eosId?: number): number[] {
  const out = [...ids];
  for (let s = 0; s < steps; s++) {
    const rows = referenceLogits(dir, out);
    const last = rows[rows.length - 1] ?? new Float64Array(0);
    let best = 0;
    for (let i = 1; i < last.length; i++) if ((last[i] ?? -Infinity) > (last[best] ?? -Infinity)) best = i;
    out.push(best);
    if (best === eosId) break;
  }
  return out;
}

/** Mean next-token cross-entropy (nats) of `ids` under the reference model, in one window. */
export function referenceMeanLoss(dir: string, ids: number[]): number {
  const logits = referenceLogits(dir, ids);
  let sum = 0;
  for (let t = 0; t < ids.length - 1; t += 1) {
    const row = Array.from(logits[t] ?? new Float64Array());
    const max = Math.max(...row);
    const logSumExp = max + Math.log(row.reduce((acc, v) => acc + Math.exp(v - max), 0));
    sum += logSumExp - (row[ids[t + 1] ?? 0] ?? 0);
  }
  return sum / (ids.length - 1);
}
