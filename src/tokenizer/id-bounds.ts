import { UserError } from "../errors.js";

/**
 * The largest token id we accept in a tokenizer.json. The tokenizer library allocates tables up to the largest id, so
 * one hostile id of 2^31 would spin for minutes (ignoring Ctrl-C) before anything else could report it. The largest
 * real vocabularies are ~262k entries (Gemma 3); 2^24 leaves ample room and loads in a few seconds at worst.
 */
export const MAX_TOKEN_ID = 2 ** 24;

interface TokenizerIds {
  model: Record<string, unknown>;
  added_tokens?: ReadonlyArray<{ id: number; content: string }> | null;
}

/**
 * Refuses a tokenizer.json whose ids are beyond what any model could embed: above MAX_TOKEN_ID, or (when the model's
 * config.json says its vocab_size) twice that size and more. Ids between vocab_size and that bound are checked when
 * they are actually produced (`checkEncodedIds`), since some tokenizers declare unused added tokens past the
 * embedding.
 */
export function checkTokenizerIds(path: string, json: TokenizerIds, modelVocabSize: number | null): void {
  const limit = modelVocabSize === null ? MAX_TOKEN_ID : Math.min(MAX_TOKEN_ID, 2 * modelVocabSize + 1024);
  const worst = largestId(json);
  if (worst === null || worst.id < limit) return;
  const against =
    modelVocabSize === null ? `the limit of ${MAX_TOKEN_ID}` : `the model's vocab_size of ${modelVocabSize} (config.json)`;
  throw new UserError(
    `${path} gives token ${JSON.stringify(worst.token)} the id ${worst.id}, far beyond ${against}; ` +
      `the tokenizer file is corrupt or belongs to another model. Download the model again with \`finetune pull --force\`.`,
  );
}

/** An encoded id the model's embedding has no row for is refused, naming the token, before it reaches the model. */
export function checkEncodedIds(ids: readonly number[], modelVocabSize: number | null, idToToken: (id: number) => string | undefined): void {
  if (modelVocabSize === null) return;
  for (const id of ids) {
    if (id >= modelVocabSize) {
      throw new UserError(
        `the tokenizer produced token ${JSON.stringify(idToToken(id) ?? "?")} with id ${id}, but the model's embedding ` +
          `has only ${modelVocabSize} rows (vocab_size in config.json); remove that token from the text, or use the ` +
          `tokenizer that belongs to this model.`,
      );
    }
  }
}

function largestId(json: TokenizerIds): { id: number; token: string } | null {
  let best: { id: number; token: string } | null = null;
  const consider = (id: unknown, token: string): void => {
    if (typeof id === "number" && (best === null || id > best.id)) best = { id, token };
  };
  const vocab = json.model["vocab"];
  if (Array.isArray(vocab)) {
    // Unigram: [piece, score] pairs whose id is the index.
    if (vocab.length > 0) consider(vocab.length - 1, String((vocab[vocab.length - 1] as unknown[])[0] ?? ""));
  } else if (typeof vocab === "object" && vocab !== null) {
    for (const [token, id] of Object.entries(vocab)) consider(id, token);
  }
  for (const added of json.added_tokens ?? []) consider(added.id, added.content);
  return best;
}
