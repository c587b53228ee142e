import type { ModelTokenizer } from "../tokenizer/load.js";
import type { TokenizedExample } from "./tokenize-example.js";

export interface PreviewColors {
  trained(text: string): string;
  prompt(text: string): string;
}

/**
 * The example's text with trained tokens in one colour and masked ones in another, so users can see what the
 * model learns to produce. Each run of equally-labelled tokens is shown as what it adds to the decoded text so far:
 * decoding a run alone would drop the leading space SentencePiece decoders strip from a text's start, and decoding
 * token by token garbles multi-byte characters split across tokens.
 */
export function previewExample(tokenizer: Pick<ModelTokenizer, "decode">, item: TokenizedExample, color: PreviewColors): string {
  let out = "";
  let start = 0;
  let shown = "";
  for (let i = 1; i <= item.ids.length; i += 1) {
    if (i < item.ids.length && item.labels[i] === item.labels[start]) continue;
    const upTo = tokenizer.decode(item.ids.slice(0, i));
    // A run that ends inside a multi-byte character decodes differently once the rest follows; show it on its own.
    const text = upTo.startsWith(shown) ? upTo.slice(shown.length) : tokenizer.decode(item.ids.slice(start, i));
    shown = upTo;
    out += item.labels[start] === 1 ? color.trained(text) : color.prompt(text);
    start = i;
  }
  return out;
}
