/**
 * The versions the hand-off mapping was checked against, field by field:
 * - Axolotl v0.18.0 (axolotl-ai-cloud/axolotl at 067b021c, src/axolotl/utils/schemas/{config,model,peft,training,datasets}.py,
 *   src/axolotl/prompt_strategies/{chat_template,input_output,completion}.py, src/axolotl/loaders/model.py for revision_of_model).
 * - TRL v1.9.0 (huggingface/trl at f2cd5771, trl/trainer/sft_config.py and sft_trainer.py: max_length, packing "bfd",
 *   completion_only_loss, assistant_only_loss with its training-template swap, eos appended to text / completion).
 * - PEFT LoraConfig (r, lora_alpha, lora_dropout, target_modules incl. "all-linear", layers_to_transform, use_rslora).
 */
export const AXOLOTL_VERSION = "0.18.0";
export const TRL_VERSION = "1.9.0";
export const PEFT_MIN_VERSION = "0.14.0";
