import { UserError } from "../errors.js";
import type { GemmaConfig, LlamaConfig, ModelConfig } from "../model/config.js";
import type { RopeSpec } from "../model/rope.js";
import { ggufArchitecture } from "./architecture.js";
import type { GgufValue } from "./writer.js";

/** Tensors llama.cpp's converter adds that are not in the checkpoint (RoPE frequency factors), always F32. */
export interface ExtraTensor {
  name: string;
  values: Float32Array;
}

export interface Hyperparameters {
  architecture: string;
  /** The `<arch>.*` keys llama.cpp reads for this architecture, as its converter writes them. */
  metadata: Record<string, GgufValue>;
  extraTensors: ExtraTensor[];
  /** Where llama.cpp will compute something other than finetune (the user is told; nothing is refused). */
  warnings: string[];
}

const u32 = (value: number): GgufValue => ({ type: "uint32", value });
const f32 = (value: number): GgufValue => ({ type: "float32", value });

/**
 * The hyperparameter keys of a whole-model GGUF, as llama.cpp's convert_hf_to_gguf.py writes them for the
 * architecture, and the RoPE factor tensors it generates. What llama.cpp cannot compute the way finetune does is
 * refused here with the reason (so a converted model never runs differently without saying so).
 */
export function ggufHyperparameters(config: ModelConfig, source: string): Hyperparameters {
  const architecture = ggufArchitecture(config);
  const key = (name: string) => `${architecture}.${name}`;
  const metadata: Record<string, GgufValue> = {};
  const extraTensors: ExtraTensor[] = [];
  const warnings: string[] = [];
  const set = (name: string, value: GgufValue) => {
    metadata[key(name)] = value;
  };

  set("context_length", u32(config.maxPositions));
  set("embedding_length", u32(config.hiddenSize));
  set("block_count", u32(config.numLayers));
  set("attention.head_count", u32(config.numHeads));
  if (config.family === "gpt2") {
    set("feed_forward_length", u32(config.innerSize));
    set("attention.layer_norm_epsilon", f32(config.layerNormEps));
    return { architecture, metadata, extraTensors, warnings };
  }
  set("feed_forward_length", u32(config.intermediateSize));
  set("attention.head_count_kv", u32(config.numKvHeads));
  set("attention.layer_norm_rms_epsilon", f32(config.rmsNormEps));
  set("attention.key_length", u32(config.headDim));
  set("attention.value_length", u32(config.headDim));

  if (config.family === "gemma") {
    gemmaKeys(config, set, source);
    return { architecture, metadata, extraTensors, warnings };
  }

  if (architecture === "llama" || architecture === "smollm3") set("vocab_size", u32(config.vocabSize));
  set("rope.dimension_count", u32(config.rotaryDim));
  set("rope.freq_base", f32(config.rope.theta));
  ropeScaling(config, config.rope, set, extraTensors, warnings);
  if (config.modelType === "phi3") set("attention.sliding_window", u32(0));
  if (config.modelType === "smollm3") checkSmolLm3NoPe(config, source);
  if (config.slidingWindow !== null && config.slidingWindow < config.maxPositions) {
    // llama.cpp's llama, qwen2, qwen3 and phi3 graphs attend to the whole context (it disables Phi-3's window).
    warnings.push(
      `${source}: sliding_window ${config.slidingWindow} is not applied by llama.cpp's ${architecture} architecture; ` +
        `llama.cpp and finetune agree for sequences up to ${config.slidingWindow} tokens and differ past them.`,
    );
  }
  return { architecture, metadata, extraTensors, warnings };
}

function ropeScaling(config: LlamaConfig, rope: RopeSpec, set: (name: string, value: GgufValue) => void, extra: ExtraTensor[], warnings: string[]): void {
  switch (rope.type) {
    case "default":
      return;
    case "linear":
      set("rope.scaling.type", { type: "string", value: "linear" });
      set("rope.scaling.factor", f32(rope.factor));
      return;
    case "llama3":
      // llama.cpp divides each frequency by rope_freqs[i]; the converter computes these factors from the config.
      extra.push({ name: "rope_freqs.weight", values: llama3Factors(rope, config.rotaryDim) });
      return;
    case "longrope":
      // llama.cpp picks the long factors when the context (not the sequence) exceeds the original length.
      set("rope.scaling.type", { type: "string", value: "longrope" });
      set("rope.scaling.attn_factor", f32(rope.attentionFactor));
      set("rope.scaling.original_context_length", u32(rope.originalMaxPositions));
      extra.push({ name: "rope_factors_long.weight", values: Float32Array.from(rope.longFactor) });
      extra.push({ name: "rope_factors_short.weight", values: Float32Array.from(rope.shortFactor) });
      warnings.push(
        `llama.cpp uses LongRoPE's long factors for every token whenever its context (-c, padded to a multiple of 256) exceeds ${rope.originalMaxPositions}, ` +
          `while transformers and finetune switch only once a sequence is longer; run llama.cpp with -c ${rope.originalMaxPositions} or less to get the same outputs on shorter texts.`,
      );
      return;
  }
}

/** Llama 3's per-frequency divisors: 1 for short wavelengths, the factor for long ones, a blend between. */
function llama3Factors(rope: Extract<RopeSpec, { type: "llama3" }>, dim: number): Float32Array {
  const factors = new Float32Array(dim / 2);
  const lowWavelen = rope.originalMaxPositions / rope.lowFreqFactor;
  const highWavelen = rope.originalMaxPositions / rope.highFreqFactor;
  for (let i = 0; i < dim / 2; i++) {
    const freq = Math.fround(1 / Math.fround(Math.fround(rope.theta) ** Math.fround((2 * i) / dim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) factors[i] = 1;
    else if (wavelen > lowWavelen) factors[i] = rope.factor;
    else {
      const smooth = (rope.originalMaxPositions / wavelen - rope.lowFreqFactor) / (rope.highFreqFactor - rope.lowFreqFactor);
      factors[i] = 1 / ((1 - smooth) / rope.factor + smooth);
    }
  }
  return factors;
}

/** llama.cpp's smollm3 graph skips RoPE in every 4th layer (n_no_rope_layer_step = 4), whatever the config says. */
function checkSmolLm3NoPe(config: LlamaConfig, source: string): void {
  const expected = config.ropeLayers.map((_, l) => (l + 1) % 4 !== 0);
  if (config.ropeLayers.some((rope, l) => rope !== expected[l])) {
    const nope = config.ropeLayers.flatMap((rope, l) => (rope ? [] : [l]));
    throw new UserError(
      `${source}: this SmolLM3 skips RoPE in layers [${nope.join(", ")}], but llama.cpp's smollm3 architecture skips it in every 4th layer ` +
        "(3, 7, 11, …) only; llama.cpp would compute another model, so it cannot be exported to GGUF.",
    );
  }
}

function gemmaKeys(config: GemmaConfig, set: (name: string, value: GgufValue) => void, source: string): void {
  // llama.cpp scales attention scores by 1/√head_dim (by 1/√(hidden/heads) for the 27B models only).
  if (config.queryPreAttnScalar !== config.headDim) {
    throw new UserError(
      `${source}: query_pre_attn_scalar is ${config.queryPreAttnScalar}, but llama.cpp's ${ggufArchitecture(config)} scales attention by 1/√head_dim (${config.headDim}); ` +
        "it would compute another model, so it cannot be exported to GGUF.",
    );
  }
  if (config.globalRope.type !== "default" && config.globalRope.type !== "linear") {
    throw new UserError(`${source}: rope type "${config.globalRope.type}" cannot be written for llama.cpp's ${ggufArchitecture(config)}; supported: default, linear.`);
  }
  set("rope.freq_base", f32(config.globalRope.theta));
  if (config.globalRope.type === "linear") {
    set("rope.scaling.type", { type: "string", value: "linear" });
    set("rope.scaling.factor", f32(config.globalRope.factor));
  }
  if (config.modelType === "gemma2") {
    // llama.cpp's gemma2 always soft-caps, with 50 and 30 when the keys are absent.
    if (config.attnSoftcap === null || config.finalSoftcap === null) {
      throw new UserError(
        `${source}: ${config.attnSoftcap === null ? "attn_logit_softcapping" : "final_logit_softcapping"} is null, but llama.cpp's gemma2 always soft-caps ` +
          "(50 for attention and 30 for the logits when unset); it would compute another model, so it cannot be exported to GGUF.",
      );
    }
    if (config.localRope.theta !== config.globalRope.theta) throw new UserError(`${source}: Gemma 2 with a separate local RoPE base cannot be written for llama.cpp's gemma2.`);
  } else {
    set("rope.freq_base_swa", f32(config.localRope.theta));
  }
  if (config.attnSoftcap !== null) set("attn_logit_softcapping", f32(config.attnSoftcap));
  if (config.finalSoftcap !== null) set("final_logit_softcapping", f32(config.finalSoftcap));
  // The window and which layers use it, one flag per layer (llama.cpp reads an array before its default pattern).
  set("attention.sliding_window", u32(config.localLayers.some((local) => local) ? config.slidingWindow : 0));
  set("attention.sliding_window_pattern", { type: "array", itemType: "int32", value: config.localLayers.map((local) => (local ? 1 : 0)) });
}
