/** The big-model tables' training run: the issue's T=512, batch 1, LoRA r=16 (alpha 2r) on all linear layers. */
export const TRAIN = { T: 512, r: 16, alpha: 32 };
/** The decode run: a prompt, then greedy tokens one at a time with the KV cache. */
export const DECODE = { prompt: 32, tokens: 32 };
