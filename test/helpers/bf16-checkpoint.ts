/**
 * A Llama-shaped BF16 checkpoint of random weights, written tensor by tensor straight to disk (no float64 copies),
 * for tests that measure memory while loading models of tens of MB. Weights are small random values; norms are 1.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";

export interface Bf16Shape {
  vocab: number;
  hidden: number;
  layers: number;
  intermediate: number;
  heads: number;
  kvHeads: number;
}

/** Writes config.json and model.safetensors; returns the largest tensor's byte count in the file. */
export function writeBf16Checkpoint(dir: string, shape: Bf16Shape): { largestBytes: number; parameters: number } {
  const { vocab: V, hidden: H, layers, intermediate: I, heads, kvHeads } = shape;
  const kv = kvHeads * (H / heads);
  const tensors: Array<[string, number[]]> = [["model.embed_tokens.weight", [V, H]], ["lm_head.weight", [V, H]], ["model.norm.weight", [H]]];
  for (let l = 0; l < layers; l += 1) {
    const p = `model.layers.${l}`;
    tensors.push([`${p}.input_layernorm.weight`, [H]], [`${p}.post_attention_layernorm.weight`, [H]]);
    tensors.push([`${p}.self_attn.q_proj.weight`, [H, H]], [`${p}.self_attn.k_proj.weight`, [kv, H]], [`${p}.self_attn.v_proj.weight`, [kv, H]]);
    tensors.push([`${p}.self_attn.o_proj.weight`, [H, H]], [`${p}.mlp.gate_proj.weight`, [I, H]], [`${p}.mlp.up_proj.weight`, [I, H]], [`${p}.mlp.down_proj.weight`, [H, I]]);
  }
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  let largestBytes = 0;
  for (const [name, dims] of tensors) {
    const bytes = 2 * dims.reduce((a, b) => a * b, 1);
    header[name] = { dtype: "BF16", shape: dims, data_offsets: [offset, offset + bytes] };
    offset += bytes;
    largestBytes = Math.max(largestBytes, bytes);
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += " ";
  mkdirSync(dir, { recursive: true });
  const fd = openSync(join(dir, "model.safetensors"), "w");
  try {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, length);
    writeSync(fd, Buffer.from(json));
    let seed = 7;
    for (const [name, dims] of tensors) {
      const values = new Uint16Array(dims.reduce((a, b) => a * b, 1));
      // bf16 0x3c00 is 2^-7: values in ±[2^-7, 2^-6), either sign; norms are exactly 1 (0x3f80).
      for (let i = 0; i < values.length; i += 1) {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        values[i] = name.endsWith("norm.weight") ? 0x3f80 : 0x3c00 + (seed >>> 25) + ((seed & 1) << 15);
      }
      writeSync(fd, new Uint8Array(values.buffer));
    }
  } finally {
    closeSync(fd);
  }
  const config = { model_type: "llama", vocab_size: V, hidden_size: H, intermediate_size: I, num_hidden_layers: layers, num_attention_heads: heads, num_key_value_heads: kvHeads, max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  return { largestBytes, parameters: offset / 2 };
}
