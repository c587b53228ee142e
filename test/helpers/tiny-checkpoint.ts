/**
 * Builds tiny random Hugging Face checkpoints (config.json, model.safetensors, tokenizer files) for tests.
 * Everything is synchronous and deterministic for a given spec (seeded PRNG), so tests can build them in a
 * beforeAll and compare runs.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TinySpec {
  kind: "llama" | "mistral" | "qwen2" | "qwen3" | "smollm3" | "phi3" | "gpt2";
  /** Default 96. */
  vocab?: number;
  /** Default 32. */
  hidden?: number;
  /** Default 2. */
  layers?: number;
  /** Default 4. */
  heads?: number;
  /** Default 2 (GQA); ignored for gpt2, which has none. */
  kvHeads?: number;
  /** Default 48; for gpt2 it becomes n_inner (when absent n_inner is null, i.e. 4 × hidden). */
  intermediate?: number;
  /** tie_word_embeddings (no lm_head.weight written). Default false; gpt2 is always tied. */
  tied?: boolean;
  /** Written as config.rope_scaling (llama/mistral/qwen2). */
  ropeScaling?: Record<string, unknown>;
  /** Written as config.rope_parameters (the newer layout); rope_type "default" and rope_theta are filled in. */
  ropeParameters?: Record<string, unknown>;
  /**
   * mistral: config.sliding_window (null when absent). qwen2: written as sliding_window with
   * use_sliding_window false, as in real Qwen2 checkpoints, so a correct implementation must NOT apply it.
   */
  slidingWindow?: number;
  /** max_position_embeddings / n_positions. Default 128. */
  maxPositions?: number;
  /** PRNG seed. Default 1. */
  seed?: number;
  /** Storage dtype of every tensor. Default F32. */
  dtype?: "F32" | "F16" | "BF16";
  /** llama, qwen3, smollm3: attention_bias (q/k/v/o biases). qwen2 always has q/k/v biases. */
  attentionBias?: boolean;
  /** qwen3: an explicit head_dim (may differ from hidden / heads, as in Qwen3-0.6B). */
  headDim?: number;
  /** smollm3: config.no_rope_layers (1 = the layer uses RoPE, 0 = NoPE); absent: no_rope_layer_interval 4 decides. */
  noRopeLayers?: number[];
  /** phi3: partial_rotary_factor (Phi-4-mini: 0.75). */
  partialRotary?: number;
  /**
   * phi3: LongRoPE scaling, as Phi-3.5/4-mini: original_max_position_embeddings `original` (max_position_embeddings
   * is maxPositions), seeded short and long factors per rotary frequency unless given.
   */
  longRope?: { original: number; shortFactor?: number[]; longFactor?: number[]; attentionFactor?: number };
  /** gpt2 only: names carry `transformer.` (save_pretrained) or not (openai-community/gpt2). Default false. */
  transformerPrefix?: boolean;
}

/** A tensor to write: row-major values (float64, rounded to the file dtype on write). */
export interface TinyTensor {
  shape: number[];
  data: Float64Array | number[];
}

// ---------------------------------------------------------------------------------------------------------------
// random numbers

/** mulberry32: tiny, fast and good enough to make weights; seeded so checkpoints are reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): () => number {
  return () => {
    // Box–Muller; 1 - u keeps the log argument in (0, 1].
    const u = 1 - rand();
    const v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

// ---------------------------------------------------------------------------------------------------------------
// float encoding

/**
 * Rounds a float64 to a binary float with `expBits` exponent bits and `mantBits` stored mantissa bits, round to
 * nearest, ties to even, straight from float64 (no double rounding through float32). Handles subnormals, overflow
 * to infinity and NaN. F16 = (5, 10), BF16 = (8, 7).
 */
function encodeSmallFloat(value: number, expBits: number, mantBits: number): number {
  const signBit = 1 << (expBits + mantBits);
  const expMask = (1 << expBits) - 1;
  const bias = (1 << (expBits - 1)) - 1;
  if (Number.isNaN(value)) return (expMask << mantBits) | (1 << (mantBits - 1));
  const sign = value < 0 || Object.is(value, -0) ? signBit : 0;
  const abs = Math.abs(value);
  if (abs === Infinity) return sign | (expMask << mantBits);
  if (abs === 0) return sign;

  const roundEven = (m: number): number => {
    const floor = Math.floor(m);
    const diff = m - floor;
    if (diff > 0.5 || (diff === 0.5 && floor % 2 === 1)) return floor + 1;
    return floor;
  };

  const minNormalExp = 1 - bias;
  if (abs < 2 ** minNormalExp) {
    // Subnormal: units of 2^(minNormalExp - mantBits). Rounding up to 2^mantBits lands exactly on the smallest
    // normal, whose bit pattern is that same integer, so no special case is needed.
    return sign | roundEven(abs / 2 ** (minNormalExp - mantBits));
  }
  let exp = Math.floor(Math.log2(abs));
  // log2 can be off by one near powers of two; fix it exactly.
  while (2 ** exp > abs) exp--;
  while (2 ** (exp + 1) <= abs) exp++;
  let mant = roundEven((abs / 2 ** exp) * 2 ** mantBits); // in [2^mantBits, 2^(mantBits+1)]
  if (mant === 2 ** (mantBits + 1)) {
    mant = 2 ** mantBits;
    exp++;
  }
  if (exp + bias >= expMask) return sign | (expMask << mantBits); // overflow → ±inf
  return sign | ((exp + bias) << mantBits) | (mant - 2 ** mantBits);
}

/** float64 → IEEE binary16 bits, round to nearest even. */
export function encodeF16(value: number): number {
  return encodeSmallFloat(value, 5, 10);
}

/** float64 → bfloat16 bits, round to nearest even. */
export function encodeBF16(value: number): number {
  return encodeSmallFloat(value, 8, 7);
}

// ---------------------------------------------------------------------------------------------------------------
// safetensors writer

const BYTES = { F32: 4, F16: 2, BF16: 2 } as const;

/** Writes a safetensors file: u64 LE header length, JSON header space-padded to a multiple of 8, data. */
export function writeSafetensors(path: string, tensors: Record<string, TinyTensor>, dtype: "F32" | "F16" | "BF16" = "F32"): void {
  const size = BYTES[dtype];
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  const names = Object.keys(tensors).sort();
  for (const name of names) {
    const t = tensors[name];
    if (t === undefined) continue;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new Error(`${name}: shape [${t.shape.join(", ")}] needs ${count} values, got ${t.data.length}`);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + count * size] };
    offset += count * size;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data buffer starts 8-byte aligned, as the reference writer does.
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += " ";
  const headerBytes = Buffer.from(json, "utf8");
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors[name];
    if (t === undefined) continue;
    for (const v of t.data) {
      if (dtype === "F32") out.writeFloatLE(v, at);
      else out.writeUInt16LE(dtype === "F16" ? encodeF16(v) : encodeBF16(v), at);
      at += size;
    }
  }
  writeFileSync(path, out);
}

// ---------------------------------------------------------------------------------------------------------------
// tokenizer

/**
 * Characters the tiny tokenizer knows, most useful first, so a small vocab still covers plain text and the
 * ChatML-ish template (which needs "<", "|", "_", ">" and "\n").
 */
const CHARS = [" ", "\n", ..."abcdefghijklmnopqrstuvwxyz", ..."ABCDEFGHIJKLMNOPQRSTUVWXYZ", ..."0123456789", ..."<|>_.,!?'\"-:;/()[]{}=+*&%$#@~`^\\"];

export const TINY_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + eos_token + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * tokenizer.json + tokenizer_config.json for a character-level BPE (no merges) whose vocab is exactly ids
 * 0..vocab-1: `<unk>`=0, `<s>`=1, `</s>`=2, then single characters; ids past the character list are unreachable
 * filler tokens `<extra_N>` so every id decodes to something. Encoding prepends `<s>`; unknown characters map to
 * `<unk>`; decoding concatenates the pieces.
 */
export function writeTokenizerFiles(dir: string, vocab: number): void {
  if (vocab < 4) throw new Error("tiny tokenizer needs a vocab of at least 4");
  mkdirSync(dir, { recursive: true });
  const specials = ["<unk>", "<s>", "</s>"];
  const pieces: Record<string, number> = {};
  specials.forEach((s, i) => (pieces[s] = i));
  for (let id = specials.length; id < vocab; id++) {
    const char = CHARS[id - specials.length];
    pieces[char ?? `<extra_${id}>`] = id;
  }
  const added = specials.map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    // Split around runs of whitespace but keep them, so decoding gives the text back.
    pre_tokenizer: { type: "Split", pattern: { Regex: "\\s+" }, behavior: "Isolated", invert: false },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: { type: "Fuse" },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: pieces,
      merges: [],
    },
  };
  const addedDecoder: Record<string, unknown> = {};
  for (const t of added) {
    addedDecoder[String(t.id)] = { content: t.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  }
  const config = {
    added_tokens_decoder: addedDecoder,
    bos_token: "<s>",
    eos_token: "</s>",
    unk_token: "<unk>",
    pad_token: null,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 128,
    tokenizer_class: "PreTrainedTokenizerFast",
    chat_template: TINY_CHAT_TEMPLATE,
  };
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer, null, 2));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config, null, 2));
}

// ---------------------------------------------------------------------------------------------------------------
// checkpoints

interface Sizes {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  maxPositions: number;
}

function sizesOf(spec: TinySpec): Sizes {
  const sizes = {
    vocab: spec.vocab ?? 96,
    hidden: spec.hidden ?? 32,
    layers: spec.layers ?? 2,
    heads: spec.heads ?? 4,
    kvHeads: spec.kind === "gpt2" ? (spec.heads ?? 4) : (spec.kvHeads ?? 2),
    intermediate: spec.intermediate ?? (spec.kind === "gpt2" ? 4 * (spec.hidden ?? 32) : 48),
    maxPositions: spec.maxPositions ?? 128,
  };
  if (spec.headDim === undefined && sizes.hidden % sizes.heads !== 0) throw new Error(`hidden ${sizes.hidden} is not a multiple of heads ${sizes.heads}`);
  if ((spec.headDim ?? sizes.hidden / sizes.heads) % 2 !== 0) throw new Error("head_dim must be even for RoPE");
  if (sizes.heads % sizes.kvHeads !== 0) throw new Error(`heads ${sizes.heads} is not a multiple of kvHeads ${sizes.kvHeads}`);
  return sizes;
}

function llamaConfig(spec: TinySpec, s: Sizes, tied: boolean): Record<string, unknown> {
  const architectures = { llama: "LlamaForCausalLM", mistral: "MistralForCausalLM", qwen2: "Qwen2ForCausalLM", qwen3: "Qwen3ForCausalLM", smollm3: "SmolLM3ForCausalLM", phi3: "Phi3ForCausalLM" } as const;
  const kind = spec.kind === "gpt2" ? "llama" : spec.kind;
  // Real Qwen2/Mistral checkpoints use rope_theta 1e6 and eps 1e-6; copying that makes config reading matter.
  const ropeTheta = kind === "llama" ? 10000 : 1000000;
  const config: Record<string, unknown> = {
    architectures: [architectures[kind]],
    model_type: kind,
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    max_position_embeddings: s.maxPositions,
    rms_norm_eps: kind === "llama" ? 1e-5 : 1e-6,
    hidden_act: "silu",
    initializer_range: 0.02,
    tie_word_embeddings: tied,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: { F32: "float32", F16: "float16", BF16: "bfloat16" }[spec.dtype ?? "F32"],
    use_cache: true,
  };
  if (spec.ropeParameters !== undefined) {
    config.rope_parameters = { rope_type: "default", rope_theta: ropeTheta, ...spec.ropeParameters };
  } else {
    config.rope_theta = ropeTheta;
    config.rope_scaling = spec.ropeScaling ?? null;
  }
  if (kind === "llama") {
    config.attention_bias = spec.attentionBias ?? false;
    config.mlp_bias = false;
    config.pretraining_tp = 1;
  }
  if (kind === "mistral") {
    config.head_dim = s.hidden / s.heads;
    config.sliding_window = spec.slidingWindow ?? null;
  }
  if (kind === "qwen2") {
    config.use_sliding_window = false;
    config.sliding_window = spec.slidingWindow ?? 32768;
    config.max_window_layers = s.layers;
  }
  if (kind === "qwen3") {
    // As Qwen3-0.6B's config.json: an explicit head_dim, no biases, the window off.
    config.head_dim = spec.headDim ?? s.hidden / s.heads;
    config.attention_bias = spec.attentionBias ?? false;
    config.use_sliding_window = false;
    config.sliding_window = null;
    config.max_window_layers = s.layers;
  }
  if (kind === "phi3") {
    // As Phi-3.5-mini / Phi-4-mini's config.json: fused projections (in the weights), partial rotary, LongRoPE.
    config.rms_norm_eps = 1e-5;
    config.partial_rotary_factor = spec.partialRotary ?? 1;
    config.sliding_window = spec.slidingWindow ?? null;
    config.resid_pdrop = 0.0;
    config.embd_pdrop = 0.0;
    config.attention_dropout = 0.0;
    if (spec.longRope) {
      const half = Math.floor((s.hidden / s.heads) * (spec.partialRotary ?? 1)) / 2;
      const seeded = (offset: number) => Array.from({ length: half }, (_, i) => 1 + ((i * 7 + offset) % 11) / 4);
      config.original_max_position_embeddings = spec.longRope.original;
      config.rope_scaling = {
        type: "longrope",
        short_factor: spec.longRope.shortFactor ?? seeded(1),
        long_factor: spec.longRope.longFactor ?? seeded(5).map((f) => f * 4),
        ...(spec.longRope.attentionFactor !== undefined ? { attention_factor: spec.longRope.attentionFactor } : {}),
      };
    }
  }
  if (kind === "smollm3") {
    config.attention_bias = spec.attentionBias ?? false;
    config.mlp_bias = false;
    config.use_sliding_window = false;
    config.sliding_window = null;
    if (spec.noRopeLayers !== undefined) config.no_rope_layers = spec.noRopeLayers;
    else config.no_rope_layer_interval = 4;
  }
  return config;
}

function gpt2Config(spec: TinySpec, s: Sizes): Record<string, unknown> {
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: s.vocab,
    n_embd: s.hidden,
    n_head: s.heads,
    n_layer: s.layers,
    n_positions: s.maxPositions,
    n_ctx: s.maxPositions,
    n_inner: spec.intermediate ?? null,
    activation_function: "gelu_new",
    layer_norm_epsilon: 1e-5,
    resid_pdrop: 0.1,
    embd_pdrop: 0.1,
    attn_pdrop: 0.1,
    initializer_range: 0.02,
    scale_attn_weights: true,
    tie_word_embeddings: true,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: { F32: "float32", F16: "float16", BF16: "bfloat16" }[spec.dtype ?? "F32"],
  };
}

/** The tensors (float64, not yet rounded) a spec's checkpoint holds; exported so tests can derive variants. */
export function tinyTensors(spec: TinySpec): Record<string, TinyTensor> {
  const s = sizesOf(spec);
  const normal = gaussian(mulberry32(spec.seed ?? 1));
  // ~0.2 scale keeps activations O(1) through a couple of layers without normalisation blowing up.
  const rand = (shape: number[], scale = 0.2): TinyTensor => {
    const count = shape.reduce((a, b) => a * b, 1);
    return { shape, data: Float64Array.from({ length: count }, () => normal() * scale) };
  };
  const nearOne = (size: number): TinyTensor => ({ shape: [size], data: Float64Array.from({ length: size }, () => 1 + normal() * 0.1) });
  const t: Record<string, TinyTensor> = {};

  if (spec.kind === "gpt2") {
    const p = spec.transformerPrefix === true ? "transformer." : "";
    const E = s.hidden;
    const P = s.maxPositions;
    t[p + "wte.weight"] = rand([s.vocab, E]);
    t[p + "wpe.weight"] = rand([P, E], 0.1);
    for (let l = 0; l < s.layers; l++) {
      const h = `${p}h.${l}.`;
      t[h + "ln_1.weight"] = nearOne(E);
      t[h + "ln_1.bias"] = rand([E], 0.05);
      t[h + "attn.c_attn.weight"] = rand([E, 3 * E]);
      t[h + "attn.c_attn.bias"] = rand([3 * E], 0.05);
      t[h + "attn.c_proj.weight"] = rand([E, E]);
      t[h + "attn.c_proj.bias"] = rand([E], 0.05);
      t[h + "ln_2.weight"] = nearOne(E);
      t[h + "ln_2.bias"] = rand([E], 0.05);
      t[h + "mlp.c_fc.weight"] = rand([E, s.intermediate]);
      t[h + "mlp.c_fc.bias"] = rand([s.intermediate], 0.05);
      t[h + "mlp.c_proj.weight"] = rand([s.intermediate, E]);
      t[h + "mlp.c_proj.bias"] = rand([E], 0.05);
      // The causal-mask buffer real GPT-2 files carry (lower-triangular ones); loaders must ignore it.
      const mask = new Float64Array(P * P);
      for (let i = 0; i < P; i++) for (let j = 0; j <= i; j++) mask[i * P + j] = 1;
      t[h + "attn.bias"] = { shape: [1, 1, P, P], data: mask };
    }
    t[p + "ln_f.weight"] = nearOne(E);
    t[p + "ln_f.bias"] = rand([E], 0.05);
    return t;
  }

  const headDim = spec.headDim ?? s.hidden / s.heads;
  const qkvBias = spec.kind === "qwen2" || spec.attentionBias === true;
  const oBias = spec.kind !== "qwen2" && spec.attentionBias === true;
  t["model.embed_tokens.weight"] = rand([s.vocab, s.hidden], 0.5);
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    t[p + "input_layernorm.weight"] = nearOne(s.hidden);
    if (spec.kind === "phi3") {
      t[p + "self_attn.qkv_proj.weight"] = rand([(s.heads + 2 * s.kvHeads) * headDim, s.hidden]);
    } else {
      t[p + "self_attn.q_proj.weight"] = rand([s.heads * headDim, s.hidden]);
      t[p + "self_attn.k_proj.weight"] = rand([s.kvHeads * headDim, s.hidden]);
      t[p + "self_attn.v_proj.weight"] = rand([s.kvHeads * headDim, s.hidden]);
    }
    t[p + "self_attn.o_proj.weight"] = rand([s.hidden, s.heads * headDim]);
    if (qkvBias) {
      t[p + "self_attn.q_proj.bias"] = rand([s.heads * headDim], 0.1);
      t[p + "self_attn.k_proj.bias"] = rand([s.kvHeads * headDim], 0.1);
      t[p + "self_attn.v_proj.bias"] = rand([s.kvHeads * headDim], 0.1);
    }
    if (oBias) t[p + "self_attn.o_proj.bias"] = rand([s.hidden], 0.1);
    if (spec.kind === "qwen3") {
      // Per-head RMSNorm weights on q and k, away from 1 so that they matter.
      t[p + "self_attn.q_norm.weight"] = { shape: [headDim], data: Float64Array.from({ length: headDim }, () => 1 + normal() * 0.3) };
      t[p + "self_attn.k_norm.weight"] = { shape: [headDim], data: Float64Array.from({ length: headDim }, () => 1 + normal() * 0.3) };
    }
    t[p + "post_attention_layernorm.weight"] = nearOne(s.hidden);
    if (spec.kind === "phi3") {
      t[p + "mlp.gate_up_proj.weight"] = rand([2 * s.intermediate, s.hidden]);
    } else {
      t[p + "mlp.gate_proj.weight"] = rand([s.intermediate, s.hidden]);
      t[p + "mlp.up_proj.weight"] = rand([s.intermediate, s.hidden]);
    }
    t[p + "mlp.down_proj.weight"] = rand([s.hidden, s.intermediate]);
  }
  t["model.norm.weight"] = nearOne(s.hidden);
  if (spec.tied !== true) t["lm_head.weight"] = rand([s.vocab, s.hidden]);
  return t;
}

/** The config.json object a spec's checkpoint gets. */
export function tinyConfig(spec: TinySpec): Record<string, unknown> {
  if (spec.attentionBias !== undefined && !["llama", "qwen3", "smollm3"].includes(spec.kind)) {
    throw new Error(`attentionBias applies to llama, qwen3 and smollm3 only (qwen2 always has q/k/v biases; ${spec.kind} has none to choose)`);
  }
  if (spec.headDim !== undefined && spec.kind !== "qwen3") throw new Error("headDim applies to qwen3 only");
  if (spec.noRopeLayers !== undefined && spec.kind !== "smollm3") throw new Error("noRopeLayers applies to smollm3 only");
  if ((spec.partialRotary !== undefined || spec.longRope !== undefined) && spec.kind !== "phi3") throw new Error("partialRotary and longRope apply to phi3 only");
  const s = sizesOf(spec);
  return spec.kind === "gpt2" ? gpt2Config(spec, s) : llamaConfig(spec, s, spec.tied === true);
}

/** Writes config.json, model.safetensors, tokenizer.json and tokenizer_config.json into `dir` (created if needed). */
export function writeTinyCheckpoint(dir: string, spec: TinySpec): void {
  mkdirSync(dir, { recursive: true });
  const config = tinyConfig(spec);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  writeSafetensors(join(dir, "model.safetensors"), tinyTensors(spec), spec.dtype ?? "F32");
  writeTokenizerFiles(dir, sizesOf(spec).vocab);
}
