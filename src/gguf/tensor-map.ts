import type { ModelConfig } from "../model/config.js";
import { permutesQk } from "./architecture.js";

/** What happens to a checkpoint tensor on its way into llama.cpp's layout. */
export type TensorTransform =
  | { kind: "none" }
  /** q/k rows from Hugging Face's split halves to llama.cpp's interleaved pairs, per head. */
  | { kind: "permute"; heads: number }
  /** GPT-2's Conv1D stores [in, out]; llama.cpp wants [out, in]. */
  | { kind: "transpose" }
  /** Gemma's RMSNorm multiplies by (1 + w); llama.cpp's by w, so the converter stores 1 + w. */
  | { kind: "addOne" };

export interface MappedTensor {
  name: string;
  transform: TensorTransform;
  /** Where the file lists it: token embeddings first, then layer by layer, then the output. */
  order: number;
}

const NONE: TensorTransform = { kind: "none" };

/**
 * llama.cpp's name for a checkpoint tensor (gguf-py's tensor map for the architecture), "skip" for tensors the
 * converter drops (a tied lm_head, attention-mask buffers, a gemma3 vision tower), or null for a tensor llama.cpp
 * has no place for.
 */
export function mapTensorName(name: string, config: ModelConfig): MappedTensor | "skip" | null {
  return config.family === "gpt2" ? mapGpt2(name) : mapDecoder(name, config);
}

const LAYER_ORDER = 10;
const OUTPUT_ORDER = 1e9;

function mapDecoder(name: string, config: Exclude<ModelConfig, { family: "gpt2" }>): MappedTensor | "skip" | null {
  const gemma = config.family === "gemma";
  const multimodal = gemma && config.multimodal;
  if (multimodal && /^(?:model\.)?(?:vision_tower|multi_modal_projector)\./.test(name)) return "skip";
  const prefix = multimodal ? "(?:language_model\\.model\\.|model\\.language_model\\.)" : "model\\.";
  if (new RegExp(`^(?:language_model\\.)?lm_head\\.weight$`).test(name)) {
    // llama.cpp reuses token_embd when there is no output tensor; Gemma's converter always drops lm_head.
    return config.tieWordEmbeddings || gemma ? "skip" : { name: "output.weight", transform: NONE, order: OUTPUT_ORDER + 1 };
  }
  const top = new RegExp(`^${prefix}(embed_tokens|norm)\\.weight$`).exec(name);
  if (top) {
    return top[1] === "embed_tokens"
      ? { name: "token_embd.weight", transform: NONE, order: 0 }
      : { name: "output_norm.weight", transform: gemma ? { kind: "addOne" } : NONE, order: OUTPUT_ORDER };
  }
  const m = new RegExp(`^${prefix}layers\\.(\\d+)\\.(.+)\\.(weight|bias)$`).exec(name);
  if (!m?.[1] || !m[2] || !m[3]) return name.endsWith("rotary_emb.inv_freq") ? "skip" : null;
  const layer = Number(m[1]);
  const [module, kind] = [m[2], m[3]];
  const table: Record<string, string> = {
    input_layernorm: "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.qkv_proj": "attn_qkv",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    // Gemma's four norms: after attention, before and after the MLP (llama.cpp's ffn_norm is the one before).
    post_attention_layernorm: gemma ? "post_attention_norm" : "ffn_norm",
    pre_feedforward_layernorm: "ffn_norm",
    post_feedforward_layernorm: "post_ffw_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.gate_up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
  };
  const target = table[module];
  if (!target) return null;
  let transform: TensorTransform = NONE;
  if (gemma && kind === "weight" && module.endsWith("norm")) transform = { kind: "addOne" };
  if (permutesQk(config) && (module === "self_attn.q_proj" || module === "self_attn.k_proj")) {
    transform = { kind: "permute", heads: module === "self_attn.q_proj" ? config.numHeads : config.numKvHeads };
  }
  return { name: `blk.${layer}.${target}.${kind}`, transform, order: LAYER_ORDER + layer * 100 + Object.keys(table).indexOf(module) * 2 + (kind === "bias" ? 1 : 0) };
}

function mapGpt2(name: string): MappedTensor | "skip" | null {
  const bare = name.startsWith("transformer.") ? name.slice("transformer.".length) : name;
  if (bare === "lm_head.weight" || name === "lm_head.weight") return "skip";
  const top: Record<string, [string, number]> = {
    "wte.weight": ["token_embd.weight", 0],
    "wpe.weight": ["position_embd.weight", 1],
    "ln_f.weight": ["output_norm.weight", OUTPUT_ORDER],
    "ln_f.bias": ["output_norm.bias", OUTPUT_ORDER + 1],
  };
  const found = top[bare];
  if (found) return { name: found[0], transform: NONE, order: found[1] };
  // The causal-mask buffers some GPT-2 files carry.
  if (/^h\.\d+\.attn\.(?:bias|masked_bias)$/.test(bare)) return "skip";
  const m = /^h\.(\d+)\.(.+)\.(weight|bias)$/.exec(bare);
  if (!m?.[1] || !m[2] || !m[3]) return null;
  const table: Record<string, string> = { ln_1: "attn_norm", "attn.c_attn": "attn_qkv", "attn.c_proj": "attn_output", ln_2: "ffn_norm", "mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down" };
  const target = table[m[2]];
  if (!target) return null;
  const conv1d = m[3] === "weight" && !m[2].startsWith("ln_");
  return { name: `blk.${m[1]}.${target}.${m[3]}`, transform: conv1d ? { kind: "transpose" } : NONE, order: LAYER_ORDER + Number(m[1]) * 100 + Object.keys(table).indexOf(m[2]) * 2 + (m[3] === "bias" ? 1 : 0) };
}
