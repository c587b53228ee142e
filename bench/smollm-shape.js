// A SmolLM2-135M-shaped checkpoint with random weights, written by the bench (no download needed).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors } from "../dist/io/safetensors-write.js";

export const SMOLLM2_135M = {
  model_type: "llama",
  vocab_size: 49152,
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  max_position_embeddings: 8192,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  tie_word_embeddings: true,
  hidden_act: "silu",
};

/** Seeded values uniform in [-scale, scale) (an LCG: fast, and good enough for random weights). */
export function randomTensor(size, scale, seed) {
  const out = new Float32Array(size);
  let s = seed >>> 0;
  for (let i = 0; i < size; i += 1) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

/** Writes config.json + model.safetensors (BF16, like the real checkpoint) into dir. */
export async function writeSmolLmShaped(dir) {
  const c = SMOLLM2_135M;
  const hd = c.hidden_size / c.num_attention_heads;
  const tensors = [];
  let seed = 1;
  const add = (name, shape, scale) => tensors.push({ name, dtype: "BF16", shape, data: randomTensor(shape.reduce((a, b) => a * b, 1), scale, seed++) });
  const ones = (name, n) => tensors.push({ name, dtype: "BF16", shape: [n], data: new Float32Array(n).fill(1) });
  add("model.embed_tokens.weight", [c.vocab_size, c.hidden_size], 0.05);
  for (let l = 0; l < c.num_hidden_layers; l += 1) {
    const p = `model.layers.${l}`;
    ones(`${p}.input_layernorm.weight`, c.hidden_size);
    ones(`${p}.post_attention_layernorm.weight`, c.hidden_size);
    const s = 1 / Math.sqrt(c.hidden_size);
    add(`${p}.self_attn.q_proj.weight`, [c.num_attention_heads * hd, c.hidden_size], s);
    add(`${p}.self_attn.k_proj.weight`, [c.num_key_value_heads * hd, c.hidden_size], s);
    add(`${p}.self_attn.v_proj.weight`, [c.num_key_value_heads * hd, c.hidden_size], s);
    add(`${p}.self_attn.o_proj.weight`, [c.hidden_size, c.num_attention_heads * hd], s);
    add(`${p}.mlp.gate_proj.weight`, [c.intermediate_size, c.hidden_size], s);
    add(`${p}.mlp.up_proj.weight`, [c.intermediate_size, c.hidden_size], s);
    add(`${p}.mlp.down_proj.weight`, [c.hidden_size, c.intermediate_size], 1 / Math.sqrt(c.intermediate_size));
  }
  ones("model.norm.weight", c.hidden_size);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "config.json"), JSON.stringify(c, null, 2));
  await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
}
