/**
 * Tiny random Gemma 2 / Gemma 3 (text) checkpoints: config.json in the shape transformers writes, model.safetensors
 * with every tensor a Gemma3ForCausalLM / Gemma2ForCausalLM has, and the tiny character tokenizer. Deterministic per
 * spec. Defaults make each Gemma difference matter: head_dim 12 ≠ hidden/heads = 8, a window of 4 (shorter than
 * the tests' sequences), query_pre_attn_scalar 20 ≠ head_dim, and different RoPE bases for local and global layers.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lcg } from "./lcg.js";
import { writeSafetensors, writeTokenizerFiles, type TinyTensor } from "./tiny-checkpoint.js";

export interface TinyGemmaSpec {
  kind: "gemma3_text" | "gemma2";
  /** Default 96. */
  vocab?: number;
  /** Default 32. */
  hidden?: number;
  /** Default 3: with the default layer kinds, two local layers and one global. */
  layers?: number;
  /** Default 4. */
  heads?: number;
  /** Default 2. */
  kvHeads?: number;
  /** Default 12 (≠ hidden / heads). */
  headDim?: number;
  /** Default 40. */
  intermediate?: number;
  /** Default 4. */
  slidingWindow?: number;
  /**
   * How the layer kinds are written: "layer_types" (default: the list, gemma3 [sliding, sliding, full, …] as a
   * pattern of 3, gemma2 alternating from sliding), or "pattern" (gemma3's older sliding_window_pattern: 3; gemma2:
   * nothing, the alternation is implied).
   */
  layerKinds?: "layer_types" | "pattern";
  /** Default 20. */
  queryPreAttnScalar?: number;
  /** attn_logit_softcapping; default null for gemma3 (where transformers ignores it anyway), 1.5 (small enough to bind) for gemma2. */
  attnSoftcap?: number | null;
  /** final_logit_softcapping; default null for gemma3, 2 for gemma2. */
  finalSoftcap?: number | null;
  /** rope_theta. Default 1000 (gemma3 global) / 100 (gemma2). */
  ropeTheta?: number;
  /** gemma3: rope_local_base_freq. Default 10. */
  ropeLocal?: number;
  /** gemma3: rope_scaling of global layers, e.g. { rope_type: "linear", factor: 2 }. */
  ropeScaling?: Record<string, unknown> | null;
  /** gemma3: write the newer rope_parameters keyed by layer type instead of rope_theta / rope_local_base_freq. */
  ropeParametersForm?: boolean;
  /** Default true (Gemma ties embeddings). */
  tied?: boolean;
  /** Default F32. */
  dtype?: "F32" | "BF16";
  /** Default 1. */
  seed?: number;
}

interface Sizes {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
}

function sizesOf(spec: TinyGemmaSpec): Sizes {
  return {
    vocab: spec.vocab ?? 96,
    hidden: spec.hidden ?? 32,
    layers: spec.layers ?? 3,
    heads: spec.heads ?? 4,
    kvHeads: spec.kvHeads ?? 2,
    headDim: spec.headDim ?? 12,
    intermediate: spec.intermediate ?? 40,
  };
}

export function tinyGemmaConfig(spec: TinyGemmaSpec): Record<string, unknown> {
  const s = sizesOf(spec);
  const gemma3 = spec.kind === "gemma3_text";
  const config: Record<string, unknown> = {
    architectures: [gemma3 ? "Gemma3ForCausalLM" : "Gemma2ForCausalLM"],
    model_type: spec.kind,
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.headDim,
    hidden_activation: "gelu_pytorch_tanh",
    max_position_embeddings: 128,
    rms_norm_eps: 1e-6,
    query_pre_attn_scalar: spec.queryPreAttnScalar ?? 20,
    sliding_window: spec.slidingWindow ?? 4,
    attn_logit_softcapping: spec.attnSoftcap !== undefined ? spec.attnSoftcap : gemma3 ? null : 1.5,
    final_logit_softcapping: spec.finalSoftcap !== undefined ? spec.finalSoftcap : gemma3 ? null : 2,
    attention_bias: false,
    attention_dropout: 0,
    tie_word_embeddings: spec.tied ?? true,
    bos_token_id: 1,
    eos_token_id: 2,
    pad_token_id: 0,
    torch_dtype: spec.dtype === "BF16" ? "bfloat16" : "float32",
    use_cache: true,
  };
  const kinds = Array.from({ length: s.layers }, (_, i) => (gemma3 ? (i + 1) % 3 !== 0 : i % 2 === 0));
  if ((spec.layerKinds ?? "layer_types") === "layer_types") {
    config.layer_types = kinds.map((local) => (local ? "sliding_attention" : "full_attention"));
  } else if (gemma3) {
    config.sliding_window_pattern = 3;
  }
  const theta = spec.ropeTheta ?? (gemma3 ? 1000 : 100);
  if (!gemma3) {
    config.rope_theta = theta;
  } else if (spec.ropeParametersForm) {
    config.rope_parameters = {
      full_attention: { rope_type: "default", ...(spec.ropeScaling ?? {}), rope_theta: theta },
      sliding_attention: { rope_type: "default", rope_theta: spec.ropeLocal ?? 10 },
    };
  } else {
    config.rope_theta = theta;
    config.rope_local_base_freq = spec.ropeLocal ?? 10;
    config.rope_scaling = spec.ropeScaling ?? null;
  }
  return config;
}

/** The checkpoint's tensors (float64, rounded to the file dtype on write). */
export function tinyGemmaTensors(spec: TinyGemmaSpec): Record<string, TinyTensor> {
  const s = sizesOf(spec);
  const uniform = lcg(spec.seed ?? 1);
  // Uniform in [-1, 1) has standard deviation 1/√3; scale so `scale` is roughly the standard deviation.
  const rand = (shape: number[], scale = 0.3): TinyTensor => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { shape, data: Float64Array.from({ length: n }, () => uniform() * scale * Math.sqrt(3)) };
  };
  // Gemma stores norm weights around 0 (the norm scales by 1 + w).
  const normWeight = (size: number): TinyTensor => rand([size], 0.2);
  const t: Record<string, TinyTensor> = {};
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  t["model.embed_tokens.weight"] = rand([s.vocab, s.hidden], 0.2);
  for (let l = 0; l < s.layers; l += 1) {
    const p = `model.layers.${l}.`;
    t[p + "input_layernorm.weight"] = normWeight(s.hidden);
    t[p + "post_attention_layernorm.weight"] = normWeight(s.hidden);
    t[p + "pre_feedforward_layernorm.weight"] = normWeight(s.hidden);
    t[p + "post_feedforward_layernorm.weight"] = normWeight(s.hidden);
    t[p + "self_attn.q_proj.weight"] = rand([q, s.hidden]);
    t[p + "self_attn.k_proj.weight"] = rand([kv, s.hidden]);
    t[p + "self_attn.v_proj.weight"] = rand([kv, s.hidden]);
    t[p + "self_attn.o_proj.weight"] = rand([s.hidden, q]);
    if (spec.kind === "gemma3_text") {
      t[p + "self_attn.q_norm.weight"] = normWeight(s.headDim);
      t[p + "self_attn.k_norm.weight"] = normWeight(s.headDim);
    }
    t[p + "mlp.gate_proj.weight"] = rand([s.intermediate, s.hidden]);
    t[p + "mlp.up_proj.weight"] = rand([s.intermediate, s.hidden]);
    t[p + "mlp.down_proj.weight"] = rand([s.hidden, s.intermediate]);
  }
  t["model.norm.weight"] = normWeight(s.hidden);
  if (spec.tied === false) t["lm_head.weight"] = rand([s.vocab, s.hidden], 0.2);
  return t;
}

/** Writes config.json, model.safetensors and the tiny tokenizer into `dir`. */
export function writeTinyGemma(dir: string, spec: TinyGemmaSpec): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(tinyGemmaConfig(spec), null, 2));
  writeSafetensors(join(dir, "model.safetensors"), tinyGemmaTensors(spec), spec.dtype ?? "F32");
  writeTokenizerFiles(dir, sizesOf(spec).vocab);
}
