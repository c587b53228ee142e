import { z } from "zod";
import { UserError } from "../errors.js";
import { ropeInverseFrequencies, type RopeSpec } from "./rope.js";

export const GEMMA_MODEL_TYPES = ["gemma2", "gemma3_text", "gemma3"] as const;

/**
 * Gemma 2 and Gemma 3 (text) decoders, normalised from config.json, following transformers' modeling_gemma2.py and
 * modeling_gemma3.py: RMSNorm x̂·(1 + w), four norms per layer, GeGLU MLP, embeddings times √hidden, attention scaled
 * by query_pre_attn_scalar^-0.5, local (sliding-window) and global layers, optional soft-caps; Gemma 3 adds per-head
 * q/k norms and its own RoPE base for local layers.
 */
export interface GemmaConfig {
  family: "gemma";
  modelType: (typeof GEMMA_MODEL_TYPES)[number];
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** Explicit in the config; need not be hidden / heads. */
  headDim: number;
  rmsNormEps: number;
  /** Attention scores are q·k times queryPreAttnScalar^-0.5 (not headDim^-0.5). */
  queryPreAttnScalar: number;
  /** Gemma 2's attn_logit_softcapping: scores = cap·tanh(scores/cap) before the mask; null = none (always, for Gemma 3). */
  attnSoftcap: number | null;
  /** final_logit_softcapping: logits = cap·tanh(logits/cap); null = none. */
  finalSoftcap: number | null;
  /** Per layer: true for a local (sliding-window) layer, false for a global one. */
  localLayers: boolean[];
  /** Query i sees key j in a local layer when i - j < window (see attention.ts and gemma.ts). */
  slidingWindow: number;
  /** RoPE of global layers (rope_theta, with rope_scaling) and of local ones (Gemma 3: rope_local_base_freq). */
  globalRope: RopeSpec;
  localRope: RopeSpec;
  globalInvFreq: Float32Array;
  localInvFreq: Float32Array;
  /** Gemma 3's q_norm / k_norm over each head. */
  qkNorm: boolean;
  tieWordEmbeddings: boolean;
  maxPositions: number;
  /**
   * "gemma3" is Gemma3ForConditionalGeneration (4B and up): its language model is a Gemma 3 text model whose
   * weights carry a prefix (see gemma.ts); the vision tower is left alone. False for gemma2 / gemma3_text.
   */
  multimodal: boolean;
}

const count = z.number().int().positive();
const ropeFields = z
  .object({ rope_type: z.string().optional(), type: z.string().optional(), rope_theta: z.number().positive().optional(), factor: z.number().positive().optional() })
  .passthrough();

const gemmaSchema = z
  .object({
    model_type: z.enum(["gemma2", "gemma3_text"]),
    vocab_size: count,
    hidden_size: count,
    intermediate_size: count,
    num_hidden_layers: count,
    num_attention_heads: count,
    num_key_value_heads: count.nullish(),
    // transformers' Gemma2Config / Gemma3TextConfig defaults where a config.json may leave a field out.
    head_dim: count.default(256),
    rms_norm_eps: z.number().positive().default(1e-6),
    query_pre_attn_scalar: z.number().positive().default(256),
    attn_logit_softcapping: z.number().positive().nullish(),
    final_logit_softcapping: z.number().positive().nullish(),
    hidden_activation: z.string().nullish(),
    sliding_window: count.nullish(),
    layer_types: z.array(z.string()).nullish(),
    sliding_window_pattern: count.nullish(),
    _sliding_window_pattern: count.nullish(),
    rope_theta: z.number().positive().nullish(),
    rope_local_base_freq: z.number().positive().nullish(),
    rope_scaling: ropeFields.nullish(),
    rope_parameters: z.record(z.string(), z.unknown()).nullish(),
    tie_word_embeddings: z.boolean().default(true),
    attention_bias: z.boolean().default(false),
    use_bidirectional_attention: z.boolean().nullish(),
    max_position_embeddings: count.nullish(),
  })
  .passthrough();

type Raw = z.infer<typeof gemmaSchema>;

/**
 * Parses a gemma2 / gemma3_text config.json, or a gemma3 one (image and text) by its text_config; every unsupported
 * option is a UserError naming the field.
 */
export function parseGemma(raw: unknown, source: string): GemmaConfig {
  const record = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
  if (record.model_type === "gemma3") {
    const text = record.text_config;
    if (typeof text !== "object" || text === null) {
      throw new UserError(`${source}: a gemma3 (image and text) config needs a text_config object for its language model; it has none.`);
    }
    // Gemma3TextConfig's defaults fill what text_config leaves out, as transformers does.
    return { ...parseGemma({ ...text, model_type: "gemma3_text" }, `${source} (text_config)`), modelType: "gemma3", multimodal: true };
  }
  const parsed = gemmaSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".") || "(root)"}: ${issue.message}`);
    throw new UserError(`${source} is not a valid model config:\n${lines.join("\n")}`);
  }
  const c = parsed.data;
  const gemma3 = c.model_type === "gemma3_text";
  const activation = c.hidden_activation ?? "gelu_pytorch_tanh";
  if (activation !== "gelu_pytorch_tanh") throw new UserError(`${source}: hidden_activation "${activation}" is not supported; Gemma uses "gelu_pytorch_tanh".`);
  if (c.attention_bias) throw new UserError(`${source}: attention_bias true is not supported (Gemma checkpoints have no attention biases).`);
  if (c.use_bidirectional_attention) throw new UserError(`${source}: use_bidirectional_attention true (an encoder variant) is not supported; finetune trains causal language models.`);
  const numKvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  if (c.num_attention_heads % numKvHeads !== 0) {
    throw new UserError(`${source}: num_attention_heads (${c.num_attention_heads}) must be a multiple of num_key_value_heads (${numKvHeads}).`);
  }
  if (c.head_dim % 2 !== 0) throw new UserError(`${source}: head_dim ${c.head_dim} must be even for RoPE.`);
  const localLayers = layerKinds(c, source);
  // Absent means the config class's default (4096); an explicit null leaves local layers without a window.
  if (c.sliding_window === null && localLayers.some((local) => local)) {
    throw new UserError(`${source}: sliding_window is null, but layers ${localLayers.flatMap((local, i) => (local ? [i] : [])).join(", ")} are sliding-window layers; give sliding_window a size.`);
  }
  const { globalRope, localRope } = gemma3 ? gemma3Rope(c, source) : gemma2Rope(c, source);
  return {
    family: "gemma",
    modelType: c.model_type,
    vocabSize: c.vocab_size,
    hiddenSize: c.hidden_size,
    intermediateSize: c.intermediate_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    numKvHeads,
    headDim: c.head_dim,
    rmsNormEps: c.rms_norm_eps,
    queryPreAttnScalar: c.query_pre_attn_scalar,
    // Gemma2Config defaults both caps (50, 30) when the keys are absent; Gemma3TextConfig defaults them to None.
    // Gemma 3 never caps attention scores, whatever its config says: Gemma3Attention.forward does not pass
    // attn_logit_softcapping to the attention function (modeling_gemma3.py; QK-norm replaced the cap).
    attnSoftcap: gemma3 ? null : c.attn_logit_softcapping === undefined ? 50 : c.attn_logit_softcapping,
    finalSoftcap: c.final_logit_softcapping === undefined ? (gemma3 ? null : 30) : c.final_logit_softcapping,
    localLayers,
    slidingWindow: c.sliding_window ?? 4096,
    globalRope,
    localRope,
    globalInvFreq: ropeInverseFrequencies(globalRope, c.head_dim),
    localInvFreq: ropeInverseFrequencies(localRope, c.head_dim),
    qkNorm: gemma3,
    tieWordEmbeddings: c.tie_word_embeddings,
    maxPositions: c.max_position_embeddings ?? (gemma3 ? 131072 : 8192),
    multimodal: false,
  };
}

/**
 * Which layers are local. layer_types when present; else Gemma 3's (older) sliding_window_pattern — layer i is
 * global when (i + 1) % pattern == 0, default pattern 6 — and Gemma 2's alternation: even layers local
 * (Gemma2DecoderLayer: is_sliding = not bool(layer_idx % 2)).
 */
function layerKinds(c: Raw, source: string): boolean[] {
  const n = c.num_hidden_layers;
  if (c.layer_types) {
    if (c.layer_types.length !== n) throw new UserError(`${source}: layer_types has ${c.layer_types.length} entries, but num_hidden_layers is ${n}.`);
    return c.layer_types.map((type, i) => {
      if (type !== "sliding_attention" && type !== "full_attention") {
        throw new UserError(`${source}: layer_types[${i}] "${type}" is not supported; supported: sliding_attention, full_attention.`);
      }
      return type === "sliding_attention";
    });
  }
  if (c.model_type === "gemma2") return Array.from({ length: n }, (_, i) => i % 2 === 0);
  const pattern = c.sliding_window_pattern ?? c._sliding_window_pattern ?? 6;
  return Array.from({ length: n }, (_, i) => (i + 1) % pattern !== 0);
}

/** "default" or "linear" RoPE from a rope_scaling / rope_parameters entry; anything else is refused by name. */
function ropeOf(entry: z.infer<typeof ropeFields> | null | undefined, theta: number, field: string, source: string): RopeSpec {
  const type = entry?.rope_type ?? entry?.type ?? "default";
  if (type === "default") return { type: "default", theta };
  if (type !== "linear") throw new UserError(`${source}: ${field} rope type "${type}" is not supported for Gemma; supported: default, linear.`);
  const factor = entry?.factor;
  if (factor === undefined) throw new UserError(`${source}: ${field} rope type "linear" needs a "factor".`);
  return { type: "linear", theta, factor };
}

/**
 * Gemma 3 RoPE: global layers use rope_theta (default 1e6) with rope_scaling, local layers rope_local_base_freq
 * (default 1e4) unscaled. Newer config.json files instead carry rope_parameters keyed by layer type.
 */
function gemma3Rope(c: Raw, source: string): { globalRope: RopeSpec; localRope: RopeSpec } {
  if (c.rope_parameters && ("full_attention" in c.rope_parameters || "sliding_attention" in c.rope_parameters)) {
    const entry = (key: string) => {
      const parsed = ropeFields.safeParse(c.rope_parameters?.[key] ?? {});
      if (!parsed.success) throw new UserError(`${source}: rope_parameters.${key} is not a valid RoPE entry.`);
      return parsed.data;
    };
    const full = entry("full_attention");
    const sliding = entry("sliding_attention");
    return {
      globalRope: ropeOf(full, full.rope_theta ?? c.rope_theta ?? 1e6, "rope_parameters.full_attention", source),
      localRope: ropeOf(sliding, sliding.rope_theta ?? c.rope_local_base_freq ?? 1e4, "rope_parameters.sliding_attention", source),
    };
  }
  if (c.rope_parameters) throw new UserError(`${source}: rope_parameters for gemma3_text must be keyed by layer type (full_attention, sliding_attention).`);
  return {
    globalRope: ropeOf(c.rope_scaling, c.rope_theta ?? 1e6, "rope_scaling", source),
    localRope: { type: "default", theta: c.rope_local_base_freq ?? 1e4 },
  };
}

/** Gemma 2 RoPE: one base (rope_theta, default 1e4) for every layer, unscaled. */
function gemma2Rope(c: Raw, source: string): { globalRope: RopeSpec; localRope: RopeSpec } {
  const flat = ropeFields.safeParse(c.rope_parameters ?? c.rope_scaling ?? {});
  if (!flat.success) throw new UserError(`${source}: rope_parameters is not a valid RoPE entry.`);
  const theta = flat.data.rope_theta ?? c.rope_theta ?? 1e4;
  const type = flat.data.rope_type ?? flat.data.type ?? "default";
  if (type !== "default") throw new UserError(`${source}: ${c.rope_parameters ? "rope_parameters" : "rope_scaling"} rope type "${type}" is not supported for Gemma 2; supported: default.`);
  const rope: RopeSpec = { type: "default", theta };
  return { globalRope: rope, localRope: rope };
}
