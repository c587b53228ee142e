import { z } from "zod";
import { UserError } from "../errors.js";
import { GEMMA_MODEL_TYPES, parseGemma, type GemmaConfig } from "./gemma-config.js";
import { ropeInverseFrequencies, type RopeSpec } from "./rope.js";

export type { GemmaConfig } from "./gemma-config.js";

export const SUPPORTED_MODEL_TYPES = ["llama", "mistral", "qwen2", "qwen3", "smollm3", "phi3", "gpt2", ...GEMMA_MODEL_TYPES] as const;

/** Llama-family decoder (Llama 2/3, Mistral, Qwen2, Qwen3, SmolLM 1-3, TinyLlama, Phi-3/3.5/4-mini), normalised from config.json. */
export interface LlamaConfig {
  family: "llama";
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  rope: RopeSpec;
  /** The leading dimensions of each head that rotate (Phi-3's partial_rotary_factor); the rest pass through. */
  rotaryDim: number;
  /** inv_freq after any scaling, length rotaryDim/2, float32 as transformers computes it (LongRoPE: the short factors). */
  ropeInvFreq: Float32Array;
  /** LongRoPE: the long factors' inv_freq, used for every position of a sequence longer than `fromLength`. */
  ropeLong: { invFreq: Float32Array; fromLength: number } | null;
  /** LongRoPE's attention factor on cos and sin (1 otherwise). */
  ropeAttentionFactor: number;
  /** Phi-3: q/k/v in one qkv_proj and gate/up in one gate_up_proj (and LoRA targets those fused modules). */
  fusedProjections: boolean;
  tieWordEmbeddings: boolean;
  /** q/k/v projection biases (Qwen2, or attention_bias). */
  qkvBias: boolean;
  /** o_proj bias (attention_bias). */
  oBias: boolean;
  mlpBias: boolean;
  /** Qwen3: RMSNorm over each head of q and k (weights [headDim]) before RoPE. */
  qkNorm: boolean;
  /** Per layer: whether it applies RoPE (SmolLM3's NoPE layers do not; every layer of the others does). */
  ropeLayers: boolean[];
  maxPositions: number;
  /** Mistral-style sliding window: query i sees keys j with i - j < window. */
  slidingWindow: number | null;
  /** First layer that uses the sliding window (Qwen2's max_window_layers; 0 for Mistral). */
  slidingWindowFromLayer: number;
}

export interface Gpt2Config {
  family: "gpt2";
  modelType: "gpt2";
  vocabSize: number;
  hiddenSize: number;
  innerSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  layerNormEps: number;
  maxPositions: number;
  tieWordEmbeddings: true;
}

export type ModelConfig = LlamaConfig | Gpt2Config | GemmaConfig;

const count = z.number().int().positive();
const ropeScaling = z
  .object({
    rope_type: z.string().optional(),
    type: z.string().optional(),
    rope_theta: z.number().positive().optional(),
    factor: z.number().positive().optional(),
    low_freq_factor: z.number().positive().optional(),
    high_freq_factor: z.number().positive().optional(),
    original_max_position_embeddings: count.optional(),
    short_factor: z.array(z.number().positive()).optional(),
    long_factor: z.array(z.number().positive()).optional(),
    attention_factor: z.number().positive().optional(),
  })
  .passthrough();

const llamaSchema = z
  .object({
    model_type: z.enum(["llama", "mistral", "qwen2", "qwen3", "smollm3", "phi3"]),
    vocab_size: count,
    hidden_size: count,
    intermediate_size: count,
    num_hidden_layers: count,
    num_attention_heads: count,
    num_key_value_heads: count.nullish(),
    head_dim: count.nullish(),
    rms_norm_eps: z.number().positive().default(1e-6),
    rope_theta: z.number().positive().optional(),
    rope_scaling: ropeScaling.nullish(),
    rope_parameters: ropeScaling.nullish(),
    tie_word_embeddings: z.boolean().optional(),
    attention_bias: z.boolean().default(false),
    mlp_bias: z.boolean().default(false),
    max_position_embeddings: count.default(2048),
    sliding_window: count.nullish(),
    use_sliding_window: z.boolean().optional(),
    max_window_layers: z.number().int().nonnegative().optional(),
    layer_types: z.array(z.string()).nullish(),
    no_rope_layers: z.array(z.number().int().min(0).max(1)).nullish(),
    no_rope_layer_interval: count.optional(),
    partial_rotary_factor: z.number().positive().max(1).optional(),
    original_max_position_embeddings: count.optional(),
    hidden_act: z.string().default("silu"),
  })
  .passthrough();

const gpt2Schema = z
  .object({
    model_type: z.literal("gpt2"),
    vocab_size: count.default(50257),
    n_embd: count.default(768),
    n_head: count.default(12),
    n_layer: count.default(12),
    n_positions: count.default(1024),
    n_inner: count.nullish(),
    layer_norm_epsilon: z.number().positive().default(1e-5),
    activation_function: z.string().default("gelu_new"),
    scale_attn_weights: z.boolean().default(true),
    scale_attn_by_inverse_layer_idx: z.boolean().default(false),
    reorder_and_upcast_attn: z.boolean().default(false),
  })
  .passthrough();

/** Parses config.json into a normalised config; every problem is a UserError naming the field. */
export function parseModelConfig(raw: unknown, source: string): ModelConfig {
  const modelType = typeof raw === "object" && raw !== null && "model_type" in raw ? String(raw.model_type) : undefined;
  if (!modelType || !(SUPPORTED_MODEL_TYPES as readonly string[]).includes(modelType)) {
    throw new UserError(
      `${source}: model_type ${modelType === undefined ? "is missing" : JSON.stringify(modelType)}${modelType ? " is not supported" : ""}; ` +
        `supported: ${SUPPORTED_MODEL_TYPES.join(", ")} (SmolLM and TinyLlama are llama).`,
    );
  }
  if ((GEMMA_MODEL_TYPES as readonly string[]).includes(modelType)) return parseGemma(raw, source);
  return modelType === "gpt2" ? parseGpt2(raw, source) : parseLlama(raw, source);
}

function issues(error: z.ZodError, source: string): UserError {
  const lines = error.issues.map((issue) => `  ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  return new UserError(`${source} is not a valid model config:\n${lines.join("\n")}`);
}

function parseLlama(raw: unknown, source: string): LlamaConfig {
  const parsed = llamaSchema.safeParse(raw);
  if (!parsed.success) throw issues(parsed.error, source);
  const c = parsed.data;
  if (c.hidden_act !== "silu") throw new UserError(`${source}: hidden_act "${c.hidden_act}" is not supported; Llama-family models use "silu".`);
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new UserError(`${source}: num_attention_heads (${c.num_attention_heads}) must be a multiple of num_key_value_heads (${numKvHeads}).`);
  }
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new UserError(`${source}: head dimension ${headDim} (hidden_size / num_attention_heads) must be an even integer.`);
  }
  // int(head_dim · partial_rotary_factor), as transformers sizes the rotary part.
  const rotaryDim = Math.floor(headDim * (c.partial_rotary_factor ?? 1));
  if (rotaryDim < 2 || rotaryDim % 2 !== 0) {
    throw new UserError(`${source}: partial_rotary_factor ${c.partial_rotary_factor} gives ${rotaryDim} rotary dimensions of ${headDim}; it must give an even number ≥ 2.`);
  }
  // SmolLM3Config's default rope base is 2e6; the others' 10000.
  const theta = c.rope_parameters?.rope_theta ?? c.rope_theta ?? (c.model_type === "smollm3" ? 2000000 : 10000);
  const rope = ropeSpec(c.rope_parameters ?? c.rope_scaling ?? null, { theta, maxPositions: c.max_position_embeddings, originalMaxPositions: c.original_max_position_embeddings, rotaryDim }, source);
  const ropeLayers = smolLm3RopeLayers(c, source);
  // Mistral and Phi-3 apply sliding_window whenever it is set; Qwen only with use_sliding_window.
  const alwaysWindowed = c.model_type === "mistral" || c.model_type === "phi3";
  const slidingWindow = alwaysWindowed ? (c.sliding_window ?? null) : c.use_sliding_window ? (c.sliding_window ?? null) : null;
  if (slidingWindow !== null && c.model_type === "smollm3") {
    throw new UserError(`${source}: use_sliding_window with sliding_window ${slidingWindow} is not supported for smollm3 yet (SmolLM3's released configs keep it off); set use_sliding_window to false.`);
  }
  const slidingWindowFromLayer = slidingFrom(c, slidingWindow, source);
  return {
    family: "llama",
    modelType: c.model_type,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads,
    headDim,
    rmsNormEps: c.rms_norm_eps,
    rope,
    rotaryDim,
    ropeInvFreq: ropeInverseFrequencies(rope, rotaryDim),
    ropeLong: rope.type === "longrope" ? { invFreq: ropeInverseFrequencies(rope, rotaryDim, "long"), fromLength: rope.originalMaxPositions } : null,
    ropeAttentionFactor: rope.type === "longrope" ? rope.attentionFactor : 1,
    fusedProjections: c.model_type === "phi3",
    // SmolLM3Config ties the embeddings unless told otherwise; the other configs untie them.
    tieWordEmbeddings: c.tie_word_embeddings ?? c.model_type === "smollm3",
    qkvBias: c.model_type === "qwen2" || c.attention_bias,
    oBias: c.attention_bias,
    // Qwen2's and Qwen3's MLPs have no bias option.
    mlpBias: c.model_type !== "qwen2" && c.model_type !== "qwen3" && c.mlp_bias,
    qkNorm: c.model_type === "qwen3",
    ropeLayers,
    maxPositions: c.max_position_embeddings,
    slidingWindow,
    slidingWindowFromLayer,
  };
}

type LlamaFields = z.infer<typeof llamaSchema>;

/**
 * SmolLM3's NoPE layers: no_rope_layers (1 = RoPE, 0 = none, one per layer), or else every no_rope_layer_interval-th
 * layer (default 4) without RoPE, as SmolLM3Config derives it. Every layer of the other types uses RoPE.
 */
function smolLm3RopeLayers(c: LlamaFields, source: string): boolean[] {
  const layers = c.num_hidden_layers;
  if (c.model_type !== "smollm3") return new Array<boolean>(layers).fill(true);
  if (c.no_rope_layers) {
    if (c.no_rope_layers.length < layers) {
      throw new UserError(`${source}: no_rope_layers has ${c.no_rope_layers.length} entries but the model has ${layers} layers (num_hidden_layers).`);
    }
    return c.no_rope_layers.slice(0, layers).map((flag) => flag === 1);
  }
  const interval = c.no_rope_layer_interval ?? 4;
  return Array.from({ length: layers }, (_, l) => (l + 1) % interval !== 0);
}

/**
 * The first layer with the sliding window: Qwen2/Qwen3 from max_window_layers on (their layer_types say the same),
 * Mistral from 0. A layer_types list that mixes the two kinds otherwise is refused rather than misread.
 */
function slidingFrom(c: LlamaFields, window: number | null, source: string): number {
  if (c.model_type !== "qwen2" && c.model_type !== "qwen3") return 0;
  const from = c.max_window_layers ?? 28;
  if (window !== null && c.layer_types) {
    const expected = c.layer_types.map((_, l) => (l >= from ? "sliding_attention" : "full_attention"));
    if (c.layer_types.some((type, l) => type !== expected[l])) {
      throw new UserError(
        `${source}: layer_types [${c.layer_types.join(", ")}] is not "full_attention" before max_window_layers (${from}) and "sliding_attention" after; ` +
          "only that pattern is supported for this model type.",
      );
    }
  }
  return from;
}

const SUPPORTED_ROPE = ["default", "linear", "llama3", "longrope"];

function ropeSpec(
  scaling: z.infer<typeof ropeScaling> | null,
  model: { theta: number; maxPositions: number; originalMaxPositions: number | undefined; rotaryDim: number },
  source: string,
): RopeSpec {
  const { theta, maxPositions } = model;
  // "su" is LongRoPE's name in early Phi-3 configs.
  const named = scaling?.rope_type ?? scaling?.type ?? "default";
  const type = named === "su" ? "longrope" : named;
  if (!SUPPORTED_ROPE.includes(type)) {
    throw new UserError(`${source}: rope type "${type}" is not supported yet; supported: ${SUPPORTED_ROPE.join(", ")}.`);
  }
  if (type === "default") return { type: "default", theta };
  if (type === "longrope") return longRope(scaling ?? {}, model, source);
  const factor = scaling?.factor;
  if (factor === undefined) throw new UserError(`${source}: rope scaling "${type}" needs a "factor".`);
  if (type === "linear") return { type: "linear", theta, factor };
  return {
    type: "llama3",
    theta,
    factor,
    lowFreqFactor: scaling?.low_freq_factor ?? 1,
    highFreqFactor: scaling?.high_freq_factor ?? 4,
    originalMaxPositions: scaling?.original_max_position_embeddings ?? maxPositions,
  };
}

/**
 * LongRoPE as transformers' _compute_longrope_parameters: a config-level original_max_position_embeddings sets
 * factor = max_position_embeddings / original; the attention factor, unless given, is √(1 + ln factor / ln original)
 * for a factor above 1.
 */
function longRope(scaling: z.infer<typeof ropeScaling>, model: { theta: number; maxPositions: number; originalMaxPositions: number | undefined; rotaryDim: number }, source: string): RopeSpec {
  const original = model.originalMaxPositions ?? scaling.original_max_position_embeddings ?? model.maxPositions;
  const factor = model.originalMaxPositions !== undefined || scaling.original_max_position_embeddings !== undefined ? model.maxPositions / original : scaling.factor;
  const half = model.rotaryDim / 2;
  for (const key of ["short_factor", "long_factor"] as const) {
    const list = scaling[key];
    if (list?.length !== half) {
      throw new UserError(`${source}: rope scaling longrope needs ${key} with one factor per rotary frequency (${half}); it has ${list?.length ?? "none"}.`);
    }
  }
  const attentionFactor = scaling.attention_factor ?? (factor !== undefined && factor > 1 ? Math.sqrt(1 + Math.log(factor) / Math.log(original)) : 1);
  return { type: "longrope", theta: model.theta, shortFactor: scaling.short_factor ?? [], longFactor: scaling.long_factor ?? [], originalMaxPositions: original, attentionFactor };
}

function parseGpt2(raw: unknown, source: string): Gpt2Config {
  const parsed = gpt2Schema.safeParse(raw);
  if (!parsed.success) throw issues(parsed.error, source);
  const c = parsed.data;
  if (c.activation_function !== "gelu_new" && c.activation_function !== "gelu_pytorch_tanh") {
    throw new UserError(`${source}: activation_function "${c.activation_function}" is not supported; GPT-2 uses "gelu_new".`);
  }
  if (!c.scale_attn_weights || c.scale_attn_by_inverse_layer_idx || c.reorder_and_upcast_attn) {
    throw new UserError(`${source}: non-standard GPT-2 attention options (scale_attn_weights=false, scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn) are not supported.`);
  }
  if (c.n_embd % c.n_head !== 0) throw new UserError(`${source}: n_embd (${c.n_embd}) must be a multiple of n_head (${c.n_head}).`);
  return {
    family: "gpt2",
    modelType: "gpt2",
    vocabSize: c.vocab_size,
    hiddenSize: c.n_embd,
    innerSize: c.n_inner ?? 4 * c.n_embd,
    numLayers: c.n_layer,
    numHeads: c.n_head,
    numKvHeads: c.n_head,
    headDim: c.n_embd / c.n_head,
    layerNormEps: c.layer_norm_epsilon,
    maxPositions: c.n_positions,
    tieWordEmbeddings: true,
  };
}
