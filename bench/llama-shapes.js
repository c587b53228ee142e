// config.json of the models the big-model bench generates: the real shapes and rope settings of the published
// checkpoints (meta-llama/Llama-3.2-1B and -3B), a tiny one of the same kind to check the harness quickly, and
// SmolLM2-135M's shape for the quantized-vs-float32 comparison.
import { TINY_TOKENIZER_IDS } from "./tiny-tokenizer.js";
import { SMOLLM2_135M } from "./smollm-shape.js";

const LLAMA_3_2 = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  attention_bias: false,
  mlp_bias: false,
  hidden_act: "silu",
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: { rope_type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  // The bench's tokenizer is tiny (see tiny-tokenizer.js); its <s> and </s> stand in for Llama's 128000/128001.
  bos_token_id: TINY_TOKENIZER_IDS.bos,
  eos_token_id: TINY_TOKENIZER_IDS.eos,
};

/** Models by the name their cache folder gets; `label` is what the tables print. */
export const BIG_MODELS = {
  "llama-3.2-1b": {
    label: "Llama-3.2-1B",
    config: { ...LLAMA_3_2, hidden_size: 2048, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, intermediate_size: 8192, vocab_size: 128256 },
  },
  "llama-3.2-3b": {
    label: "Llama-3.2-3B",
    config: { ...LLAMA_3_2, hidden_size: 3072, num_hidden_layers: 28, num_attention_heads: 24, num_key_value_heads: 8, head_dim: 128, intermediate_size: 8192, vocab_size: 128256 },
  },
  // FINETUNE_BENCH_TINY=1 runs every table on these (a for 1B, b for 3B and the 135M comparison), so the whole
  // harness is checked in seconds.
  "tiny-llama-a": {
    label: "tiny Llama (hidden 64)",
    config: { ...LLAMA_3_2, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, intermediate_size: 128, vocab_size: 512 },
  },
  "tiny-llama-b": {
    label: "tiny Llama (hidden 96)",
    config: { ...LLAMA_3_2, hidden_size: 96, num_hidden_layers: 3, num_attention_heads: 3, num_key_value_heads: 1, head_dim: 32, intermediate_size: 160, vocab_size: 640 },
  },
  "smollm2-135m": {
    label: "SmolLM2-135M",
    config: { architectures: ["LlamaForCausalLM"], ...SMOLLM2_135M, bos_token_id: TINY_TOKENIZER_IDS.bos, eos_token_id: TINY_TOKENIZER_IDS.eos },
  },
};

/** Every weight tensor of a Llama-family config in model order: name, shape, and whether it is a norm (ones). */
export function llamaTensors(c) {
  const H = c.hidden_size;
  const hd = c.head_dim ?? H / c.num_attention_heads;
  const q = c.num_attention_heads * hd;
  const kv = c.num_key_value_heads * hd;
  const I = c.intermediate_size;
  const list = [{ name: "model.embed_tokens.weight", shape: [c.vocab_size, H] }];
  for (let l = 0; l < c.num_hidden_layers; l += 1) {
    const p = `model.layers.${l}`;
    list.push(
      { name: `${p}.input_layernorm.weight`, shape: [H], norm: true },
      { name: `${p}.self_attn.q_proj.weight`, shape: [q, H] },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, H] },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, H] },
      { name: `${p}.self_attn.o_proj.weight`, shape: [H, q] },
      { name: `${p}.post_attention_layernorm.weight`, shape: [H], norm: true },
      { name: `${p}.mlp.gate_proj.weight`, shape: [I, H] },
      { name: `${p}.mlp.up_proj.weight`, shape: [I, H] },
      { name: `${p}.mlp.down_proj.weight`, shape: [H, I] },
    );
  }
  list.push({ name: "model.norm.weight", shape: [H], norm: true });
  if (!c.tie_word_embeddings) list.push({ name: "lm_head.weight", shape: [c.vocab_size, H] });
  return list;
}
