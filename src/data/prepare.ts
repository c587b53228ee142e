import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { relative, resolve } from "node:path";
import { UserError } from "../errors.js";
import type { PullEvent } from "../hub/pull.js";
import type { Recipe } from "../recipe/schema.js";
import type { ModelTokenizer } from "../tokenizer/load.js";
import { toExamples, type DataFormat, type Example } from "./formats.js";
import { readRecords } from "./read-records.js";
import { resolveDataFiles } from "./resolve-files.js";
import { buildSequences, type Sequence } from "./sequences.js";
import { splitValidation } from "./split-shuffle.js";
import { tokenizeExample, type TokenizedExample } from "./tokenize-example.js";

export interface DataFile {
  path: string;
  sha256: string;
  records: number;
  role: "train" | "validation";
}

export interface PreparedData {
  format: DataFormat;
  formatDetected: boolean;
  files: DataFile[];
  trainItems: TokenizedExample[];
  trainSequences: Sequence[];
  validationSequences: Sequence[];
  truncated: number;
  /** Examples dropped because truncation left no trained token. */
  untrained: number;
  trainedTokens: number;
  padId: number;
  /** The recipe with defaults filled in and local paths made relative to the run directory. */
  resolvedRecipe(output: string, localModelDir: string | null): Recipe;
}

export interface PrepareParams {
  recipe: Recipe;
  baseDir: string;
  tokenizer: ModelTokenizer;
  env: NodeJS.ProcessEnv;
  token?: string | undefined;
  signal?: AbortSignal | undefined;
  onPull?: ((event: PullEvent) => void) | undefined;
}

/**
 * Data for a recipe: files (local, glob or hub) → records → examples (format detected or given) → the validation
 * split → tokens with trained-token labels → sequences (truncated with a count, optionally packed).
 */
export async function prepareData(params: PrepareParams): Promise<PreparedData> {
  const { recipe, tokenizer } = params;
  const resolveParams = { baseDir: params.baseDir, env: params.env, token: params.token, signal: params.signal, onEvent: params.onPull };
  const hasChatTemplate = tokenizer.chatTemplate !== null;
  let format: DataFormat | null = recipe.data.format === "auto" ? null : recipe.data.format;
  const files: DataFile[] = [];

  const readExamples = async (spec: string | string[], role: DataFile["role"]): Promise<Example[]> => {
    const examples: Example[] = [];
    for (const path of await resolveDataFiles(spec, resolveParams)) {
      const source = await readRecords(path);
      // Every file must be in the format the first one set (or the recipe names).
      const converted = toExamples(source, { format: format ?? "auto", fields: recipe.data.fields, hasChatTemplate });
      format = converted.format;
      examples.push(...converted.examples);
      files.push({ path, sha256: createHash("sha256").update(await readFile(path)).digest("hex"), records: source.records.length, role });
    }
    return examples;
  };

  const all = await readExamples(recipe.data.train, "train");
  const split =
    typeof recipe.data.validation === "number"
      ? splitValidation(all, recipe.data.validation, recipe.train.seed)
      : { train: all, validation: await readExamples(recipe.data.validation, "validation") };
  if (split.train.length === 0) throw new UserError(`data.train has no examples left for training after the validation split (${all.length} records); add data or lower data.validation.`);

  const tokenize = (examples: Example[]) => examples.map((example) => tokenizeExample(tokenizer, example, { completionOnly: recipe.train.completion_only }));
  const padId = tokenizer.eosIds[0] ?? 0;
  const sequenceParams = { maxSeqLen: recipe.train.max_seq_len, packing: recipe.train.packing, padId };
  const trainItems = tokenize(split.train);
  const train = buildSequences(trainItems, sequenceParams);
  const validation = buildSequences(tokenize(split.validation), sequenceParams);
  const trainedTokens = train.sequences.reduce((n, s) => n + s.labels.reduce((a, b) => a + b, 0), 0);
  if (trainedTokens === 0) {
    throw new UserError(`no token of the training data is trained on (completion_only: ${recipe.train.completion_only}, max_seq_len: ${recipe.train.max_seq_len}); check the data format or raise train.max_seq_len.`);
  }
  const resolvedFormat = format ?? "text";
  return {
    format: resolvedFormat,
    formatDetected: recipe.data.format === "auto",
    files,
    trainItems,
    trainSequences: train.sequences,
    validationSequences: validation.sequences,
    truncated: train.truncated + validation.truncated,
    untrained: train.untrained + validation.untrained,
    trainedTokens,
    padId,
    resolvedRecipe: (output, localModelDir) => {
      // Local files and globs are rewritten relative to the run directory, so the resolved recipe runs from there.
      const relocateOne = (spec: string): string => {
        const local = resolve(params.baseDir, spec);
        return existsSync(local) || /[*?[{]/.test(spec) ? relative(output, local) || "." : spec;
      };
      return {
        ...recipe,
        model: localModelDir ? relative(output, localModelDir) || "." : recipe.model,
        data: {
          ...recipe.data,
          format: resolvedFormat,
          train: Array.isArray(recipe.data.train) ? recipe.data.train.map(relocateOne) : relocateOne(recipe.data.train),
          validation: typeof recipe.data.validation === "number" ? recipe.data.validation : relocateOne(recipe.data.validation),
        },
      };
    },
  };
}
