import { UserError } from "../errors.js";
import type { ModelConfig } from "../model/config.js";

/**
 * llama.cpp architecture names (gguf-py constants MODEL_ARCH_NAMES); Mistral converts as LlamaModel, and a Gemma 3
 * text checkpoint (Gemma3ForCausalLM) as gemma3.
 */
const ARCHITECTURE: Record<string, string> = { llama: "llama", mistral: "llama", qwen2: "qwen2", qwen3: "qwen3", smollm3: "smollm3", phi3: "phi3", gpt2: "gpt2", gemma2: "gemma2", gemma3_text: "gemma3", gemma3: "gemma3" };

/** The llama.cpp architecture a model converts to, or a UserError listing the supported model types. */
export function ggufArchitecture(config: ModelConfig): string {
  const architecture = ARCHITECTURE[config.modelType];
  if (!architecture) throw new UserError(`GGUF export does not support model_type "${config.modelType}"; supported: ${Object.keys(ARCHITECTURE).join(", ")}.`);
  return architecture;
}

/**
 * Whether llama.cpp rotates adjacent pairs for this model (LLM_ARCH_LLAMA and SMOLLM3, whose converter is Llama's),
 * so the converter reorders q/k rows from Hugging Face's split halves. Qwen2, Qwen3, Phi-3, Gemma and GPT-2 keep
 * Hugging Face's order (NeoX rotation, or none).
 */
export function permutesQk(config: ModelConfig): boolean {
  return config.modelType === "llama" || config.modelType === "mistral" || config.modelType === "smollm3";
}
