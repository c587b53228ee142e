import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { UserError } from "../errors.js";

/**
 * The parts of tokenizer.json that decide how text becomes ids, as GGUF export needs them. loadTokenizer checks the
 * file first (it must load for finetune to have trained with it), so only the shapes used here are checked again.
 */
const step = z.looseObject({ type: z.string() });
export type TokenizerStep = z.infer<typeof step> & Record<string, unknown>;

const tokenizerJsonSchema = z.looseObject({
  model: z.looseObject({
    type: z.string().optional(),
    vocab: z.unknown().optional(),
    merges: z.unknown().optional(),
    byte_fallback: z.boolean().nullish(),
    ignore_merges: z.boolean().nullish(),
    unk_token: z.string().nullish(),
  }),
  normalizer: step.nullish(),
  pre_tokenizer: step.nullish(),
  post_processor: step.nullish(),
  added_tokens: z
    .array(z.looseObject({ id: z.number().int().nonnegative(), content: z.string(), special: z.boolean().optional(), normalized: z.boolean().optional() }))
    .nullish(),
});

export interface TokenizerJson {
  path: string;
  /** "BPE", "WordPiece", "Unigram", "WordLevel", … (tokenizer.json model.type; BPE when absent, as the library reads it) */
  modelType: string;
  /** token → id of the model's own vocabulary (added tokens not included) */
  vocab: Map<string, number>;
  /** BPE merges as [left, right] pairs in rank order (both the "a b" and the ["a", "b"] spellings) */
  merges: [string, string][];
  byteFallback: boolean;
  ignoreMerges: boolean;
  unkToken: string | null;
  normalizer: TokenizerStep | null;
  preTokenizer: TokenizerStep | null;
  addedTokens: { id: number; content: string; special: boolean; normalized: boolean }[];
}

export async function readTokenizerJson(modelDir: string): Promise<TokenizerJson> {
  const path = join(modelDir, "tokenizer.json");
  const parsed = tokenizerJsonSchema.safeParse(JSON.parse(await readFile(path, "utf8")));
  if (!parsed.success) throw new UserError(`${path} is not a tokenizer.json GGUF export can read: ${parsed.error.issues[0]?.message ?? "invalid"}.`);
  const json = parsed.data;
  const modelType = json.model.type ?? "BPE";
  return {
    path,
    modelType,
    vocab: modelType === "BPE" ? readVocab(path, json.model.vocab) : new Map(),
    merges: modelType === "BPE" ? readMerges(path, json.model.merges) : [],
    byteFallback: json.model.byte_fallback ?? false,
    ignoreMerges: json.model.ignore_merges ?? false,
    unkToken: json.model.unk_token ?? null,
    normalizer: (json.normalizer ?? null) as TokenizerStep | null,
    preTokenizer: (json.pre_tokenizer ?? null) as TokenizerStep | null,
    addedTokens: (json.added_tokens ?? []).map((token) => ({
      id: token.id,
      content: token.content,
      special: token.special ?? false,
      normalized: token.normalized ?? !(token.special ?? false),
    })),
  };
}

function readVocab(path: string, raw: unknown): Map<string, number> {
  const vocab = z.record(z.string(), z.number().int().nonnegative()).safeParse(raw);
  if (!vocab.success) throw new UserError(`${path}: model.vocab is not a map of token → id; download the model again with \`finetune pull --force\`.`);
  return new Map(Object.entries(vocab.data));
}

function readMerges(path: string, raw: unknown): [string, string][] {
  const merges = z.array(z.union([z.string(), z.tuple([z.string(), z.string()])])).safeParse(raw ?? []);
  if (!merges.success) throw new UserError(`${path}: model.merges is neither "a b" strings nor [a, b] pairs; download the model again with \`finetune pull --force\`.`);
  return merges.data.map((merge) => {
    if (typeof merge !== "string") return merge;
    const space = merge.indexOf(" ");
    if (space <= 0) throw new UserError(`${path}: merge ${JSON.stringify(merge)} has no space between its two parts.`);
    return [merge.slice(0, space), merge.slice(space + 1)];
  });
}
