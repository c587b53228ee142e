import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { z } from "zod";
import { errnoCode, UserError } from "../errors.js";
import { checkEncodedIds, checkTokenizerIds } from "./id-bounds.js";

/** A model's tokenizer with the facts generation and chat rendering need, read from its directory. */
export interface ModelTokenizer {
  /** Token ids for `text`; `addSpecialTokens` (default true) applies the tokenizer.json post_processor (BOS/EOS). */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /**
   * The ids the post_processor puts before and after a text's own (e.g. BOS), the same for every text: so a caller
   * that needs both encodings encodes once without specials and adds these. Found once, by encoding `probe` (any
   * text this tokenizer can encode) both ways.
   */
  specialsAround(probe: string): { front: number[]; back: number[] };
  /** Text for `ids`; `[]` gives "". */
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** max id + 1 over the vocab and the added tokens. */
  vocabSize: number;
  bosToken: string | null;
  eosToken: string | null;
  bosId: number | null;
  /** every id that ends generation: eos_token's id, plus generation_config.json eos_token_id (number or list) */
  eosIds: number[];
  specialIds: Set<number>;
  /**
   * Named special tokens as strings (bos_token, eos_token, unk_token, pad_token, …), for chat templates.
   * Only the ones the model defines.
   */
  namedSpecialTokens: Readonly<Record<string, string>>;
  /**
   * the chat template source: chat_template.jinja wins; else tokenizer_config.chat_template as a string, or the
   * entry named "default" in a list of {name, template}; null when none
   */
  chatTemplate: string | null;
  /** Names in a tokenizer_config.chat_template list (empty otherwise), so errors can say what exists. */
  chatTemplateNames: string[];
  /** generation defaults from generation_config.json when present */
  generationDefaults: GenerationDefaults;
}

export interface GenerationDefaults {
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  maxNewTokens?: number;
  repetitionPenalty?: number;
}

const SPECIAL_TOKEN_KEYS = ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"] as const;

// Special tokens are written either as a plain string or as a serialised AddedToken `{content, ...}`.
const tokenValue = z.union([z.string(), z.looseObject({ content: z.string() })]).nullish();
const tokenFields = Object.fromEntries(SPECIAL_TOKEN_KEYS.map((key) => [key, tokenValue])) as Record<
  (typeof SPECIAL_TOKEN_KEYS)[number],
  typeof tokenValue
>;

const tokenizerJsonSchema = z.looseObject({
  model: z.looseObject({ type: z.string().optional(), unk_token: z.unknown() }),
  added_tokens: z
    .array(z.looseObject({ id: z.number().int().nonnegative(), content: z.string(), special: z.boolean().optional() }))
    .nullish(),
});

const tokenizerConfigSchema = z.looseObject({
  ...tokenFields,
  additional_special_tokens: z.array(z.union([z.string(), z.looseObject({ content: z.string() })])).nullish(),
  chat_template: z.union([z.string(), z.array(z.looseObject({ name: z.string(), template: z.string() }))]).nullish(),
});

const specialTokensMapSchema = z.looseObject({
  ...tokenFields,
  additional_special_tokens: z.array(z.union([z.string(), z.looseObject({ content: z.string() })])).nullish(),
});

const tokenId = z.number().int().nonnegative();
const generationConfigSchema = z.looseObject({
  bos_token_id: tokenId.nullish(),
  eos_token_id: z.union([tokenId, z.array(tokenId)]).nullish(),
  do_sample: z.boolean().nullish(),
  temperature: z.number().nonnegative().nullish(),
  top_k: z.number().int().nonnegative().nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_new_tokens: z.number().int().positive().nullish(),
  repetition_penalty: z.number().positive().nullish(),
});

// Only the embedding size matters here: ids the model cannot embed are refused with the tokenizer's own words.
const modelConfigSchema = z.looseObject({ vocab_size: z.number().int().positive().nullish() });

type TokenizerConfig = z.infer<typeof tokenizerConfigSchema>;
type GenerationConfig = z.infer<typeof generationConfigSchema>;

/**
 * Loads the tokenizer in a model directory: tokenizer.json (required), and when present tokenizer_config.json,
 * special_tokens_map.json, generation_config.json and chat_template.jinja.
 */
export async function loadTokenizer(dir: string): Promise<ModelTokenizer> {
  const tokenizerText = await readOptional(dir, "tokenizer.json");
  if (tokenizerText === null) throw await missingTokenizerJson(dir);
  const tokenizerJson = parse(dir, "tokenizer.json", tokenizerText, tokenizerJsonSchema);
  const config = await readJson(dir, "tokenizer_config.json", tokenizerConfigSchema);
  const specialMap = await readJson(dir, "special_tokens_map.json", specialTokensMapSchema);
  const generation = await readJson(dir, "generation_config.json", generationConfigSchema);
  const templateFile = await readOptional(dir, "chat_template.jinja");
  const modelVocabSize = (await readJson(dir, "config.json", modelConfigSchema))?.vocab_size ?? null;
  checkTokenizerIds(join(dir, "tokenizer.json"), tokenizerJson, modelVocabSize);

  // tokenizer_config.json wins over special_tokens_map.json, as in transformers.
  const named: Record<string, string> = {};
  for (const key of SPECIAL_TOKEN_KEYS) {
    const value = tokenContent(config?.[key]) ?? tokenContent(specialMap?.[key]);
    if (value !== null) named[key] = value;
  }
  const additional = (config?.additional_special_tokens ?? specialMap?.additional_special_tokens ?? [])
    .map(tokenContent)
    .filter((token): token is string => token !== null);

  const tokenizer = construct(dir, tokenizerJson, config, named, additional);
  const idToToken = (id: number): string | undefined => tokenizer.id_to_token(id) ?? undefined;
  const tokenToId = (token: string): number | undefined => tokenizer.token_to_id(token) ?? undefined;

  // A generation_config id stands in when the tokenizer config names no BOS/EOS token.
  const generationEos = generationEosIds(generation);
  const bosToken = named.bos_token ?? idOrNull(generation?.bos_token_id, idToToken);
  const eosToken = named.eos_token ?? idOrNull(generationEos[0], idToToken);
  if (bosToken !== null) named.bos_token = bosToken;
  if (eosToken !== null) named.eos_token = eosToken;
  const bosId = bosToken === null ? null : (tokenToId(bosToken) ?? null);
  const eosId = eosToken === null ? undefined : tokenToId(eosToken);
  const eosIds = [...new Set([...(eosId === undefined ? [] : [eosId]), ...generationEos])];

  const specialIds = new Set<number>();
  for (const added of tokenizerJson.added_tokens ?? []) if (added.special === true) specialIds.add(added.id);
  for (const token of [...Object.values(named), ...additional]) {
    const id = tokenToId(token);
    if (id !== undefined) specialIds.add(id);
  }

  const { chatTemplate, chatTemplateNames } = pickChatTemplate(templateFile, config);

  const encode = (text: string, addSpecialTokens: boolean): number[] => {
    const ids = checkIds(tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids, text);
    checkEncodedIds(ids, modelVocabSize, idToToken);
    return ids;
  };

  let specials: { front: number[]; back: number[] } | undefined;
  return {
    encode: (text, options) => encode(text, options?.addSpecialTokens ?? true),
    specialsAround(probe) {
      specials ??= specialsAround(encode(probe, true), encode(probe, false));
      return specials;
    },
    decode(ids, options) {
      // The library refuses an empty list; an empty generation is a normal outcome for us.
      if (ids.length === 0) return "";
      return tokenizer.decode(ids, { skip_special_tokens: options?.skipSpecialTokens ?? false });
    },
    idToToken,
    tokenToId,
    vocabSize: vocabSize(tokenizer),
    bosToken,
    eosToken,
    bosId,
    eosIds,
    specialIds,
    namedSpecialTokens: named,
    chatTemplate,
    chatTemplateNames,
    generationDefaults: generationDefaults(generation),
  };
}

function construct(
  dir: string,
  tokenizerJson: z.infer<typeof tokenizerJsonSchema>,
  config: TokenizerConfig | null,
  named: Record<string, string>,
  additional: string[],
): Tokenizer {
  // The library requires these keys (null is fine) and reads special tokens from the config as plain strings.
  const json = {
    ...{ normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null },
    ...tokenizerJson,
    added_tokens: tokenizerJson.added_tokens ?? [],
  };
  // WordLevel models take their unk token from the config, not from tokenizer.json's model section.
  const modelUnk = typeof tokenizerJson.model.unk_token === "string" ? tokenizerJson.model.unk_token : undefined;
  const libraryConfig = { ...config, unk_token: modelUnk, ...named, additional_special_tokens: additional };
  try {
    return new Tokenizer(json, libraryConfig);
  } catch (error) {
    throw new UserError(
      `${join(dir, "tokenizer.json")} could not be loaded: ${message(error)}. ` +
        `Its model type is ${JSON.stringify(tokenizerJson.model.type ?? "unknown")}; supported: BPE, WordPiece, Unigram, WordLevel.`,
    );
  }
}

/** Where a probe's own ids sit inside its encoding with specials: what comes before and after are the specials. */
function specialsAround(withSpecials: readonly number[], core: readonly number[]): { front: number[]; back: number[] } {
  for (let offset = 0; offset + core.length <= withSpecials.length; offset += 1) {
    if (core.every((id, i) => withSpecials[offset + i] === id)) {
      return { front: withSpecials.slice(0, offset), back: withSpecials.slice(offset + core.length) };
    }
  }
  // A post_processor that changes the text's own ids is unheard of; treat every extra id as a leading special.
  return { front: withSpecials.slice(0, Math.max(0, withSpecials.length - core.length)), back: [] };
}

/** The library yields undefined for a piece with no id when the model has no unk token; say so instead. */
function checkIds(ids: readonly (number | undefined)[], text: string): number[] {
  const out: number[] = [];
  for (const id of ids) {
    if (id === undefined) {
      throw new UserError(
        `the tokenizer has no id for part of ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text)} ` +
          `and defines no unk_token; remove characters the model's vocabulary cannot represent.`,
      );
    }
    out.push(id);
  }
  return out;
}

function vocabSize(tokenizer: Tokenizer): number {
  let max = -1;
  for (const id of tokenizer.get_vocab(true).values()) max = Math.max(max, id);
  for (const id of tokenizer.get_added_tokens_decoder().keys()) max = Math.max(max, id);
  return max + 1;
}

function pickChatTemplate(
  templateFile: string | null,
  config: TokenizerConfig | null,
): { chatTemplate: string | null; chatTemplateNames: string[] } {
  const fromConfig = config?.chat_template ?? null;
  const chatTemplateNames = Array.isArray(fromConfig) ? fromConfig.map((entry) => entry.name) : [];
  if (templateFile !== null) return { chatTemplate: templateFile, chatTemplateNames };
  if (typeof fromConfig === "string") return { chatTemplate: fromConfig, chatTemplateNames };
  const entry = fromConfig?.find((candidate) => candidate.name === "default");
  return { chatTemplate: entry?.template ?? null, chatTemplateNames };
}

function generationEosIds(generation: GenerationConfig | null): number[] {
  const value = generation?.eos_token_id;
  if (value === undefined || value === null) return [];
  return typeof value === "number" ? [value] : value;
}

function generationDefaults(generation: GenerationConfig | null): GenerationDefaults {
  if (generation === null) return {};
  const defaults: GenerationDefaults = {};
  if (generation.do_sample != null) defaults.doSample = generation.do_sample;
  if (generation.temperature != null) defaults.temperature = generation.temperature;
  if (generation.top_k != null) defaults.topK = generation.top_k;
  if (generation.top_p != null) defaults.topP = generation.top_p;
  if (generation.max_new_tokens != null) defaults.maxNewTokens = generation.max_new_tokens;
  if (generation.repetition_penalty != null) defaults.repetitionPenalty = generation.repetition_penalty;
  return defaults;
}

function tokenContent(value: string | { content: string } | null | undefined): string | null {
  if (value === undefined || value === null) return null;
  return typeof value === "string" ? value : value.content;
}

function idOrNull(id: number | null | undefined, idToToken: (id: number) => string | undefined): string | null {
  return id === undefined || id === null ? null : (idToToken(id) ?? null);
}

async function readOptional(dir: string, name: string): Promise<string | null> {
  const path = join(dir, name);
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return null;
    throw new UserError(`cannot read ${path}: ${message(error)}`);
  }
}

async function readJson<T>(dir: string, name: string, schema: z.ZodType<T>): Promise<T | null> {
  const text = await readOptional(dir, name);
  return text === null ? null : parse(dir, name, text, schema);
}

function parse<T>(dir: string, name: string, text: string, schema: z.ZodType<T>): T {
  const path = join(dir, name);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new UserError(`${path} is not valid JSON (${message(error)}); download the model again with \`finetune pull --force\`.`);
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `  ${issue.path.join(".") || "(root)"}: ${issue.message}`);
    throw new UserError(`${path} is not a valid ${name}:\n${lines.join("\n")}`);
  }
  return result.data;
}

async function missingTokenizerJson(dir: string): Promise<UserError> {
  let present: string[];
  try {
    present = (await readdir(dir)).sort();
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return new UserError(`model directory ${dir} does not exist.`);
    if (errnoCode(error) === "ENOTDIR") return new UserError(`${dir} is not a directory; give the model's directory.`);
    throw error;
  }
  const listing = `present: ${present.length > 0 ? present.join(", ") : "nothing"}`;
  // Some repos ship only tokenizer.model; worth saying why that is not enough.
  const sentencepiece = present.includes("tokenizer.model")
    ? "; models with only a sentencepiece tokenizer.model are not supported yet"
    : "";
  return new UserError(
    `${dir} has no tokenizer.json (${listing}); a tokenizer.json is needed${sentencepiece}. ` +
      `Use a model repo that includes tokenizer.json (most do).`,
  );
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
