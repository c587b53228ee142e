import type { ModelTokenizer } from "../tokenizer/load.js";
import type { TokenizedExample } from "./tokenize-example.js";

export interface PreviewColors {
  trained(text: string): string;
  prompt(text: string): string;
}

/**
 * The example's text with trained tokens in one colour and masked ones in another, so users can see what the
 * model learns to produce. Runs of equally-labelled tokens are decoded together, because decoding token by token
 * garbles multi-byte characters split across tokens.
 */
export function previewExample(tokenizer: Pick<ModelTokenizer, "decode">, item: TokenizedExample, color: PreviewColors): string {
  let out = "";
  let start = 0;
  for (let i = 1; i <= item.ids.length; i += 1) {
    if (i < item.ids.length && item.labels[i] === item.labels[start]) continue;
    const text = tokenizer.decode(item.ids.slice(start, i));
    out += item.labels[start] === 1 ? color.trained(text) : color.prompt(text);
    start = i;
  }
  return out;
}
