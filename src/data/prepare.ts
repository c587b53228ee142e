import { existsSync } from "node:fs";
import { relative, resolve } from "node:path";
import { sha256File } from "../io/hash.js";
import { UserError } from "../errors.js";
import type { PullEvent } from "../hub/pull.js";
import type { Recipe } from "../recipe/schema.js";
import type { ModelTokenizer } from "../tokenizer/load.js";
import { datedTemplateWarning, emptyExampleWarning, validationSizeWarning, type PlacedExample } from "./data-warnings.js";
import { toExamples, type DataFormat, type Example } from "./formats.js";
import { readRecords } from "./read-records.js";
import { resolveDataFiles } from "./resolve-files.js";
import { buildSequences, type Sequence } from "./sequences.js";
import { splitValidation } from "./split-shuffle.js";
import { tokenizeExample, type TokenizedExample } from "./tokenize-example.js";

export interface DataFile {
  path: string;
  /** For a hub dataset file: datasets/org/name@sha/file; null for a local file. */
  pinned: string | null;
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
  /** Problems that do not stop training but that the user should hear about (empty records, a tiny validation set). */
  warnings: string[];
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
  let formatOrigin = "data.format";
  const files: DataFile[] = [];

  // Hub files per recipe entry, pinned as org/name@sha/file so a re-run reads exactly these commits.
  const pinned = new Map<string, string[]>();
  const placed: PlacedExample[] = [];
  const readExamples = async (spec: string | string[], role: DataFile["role"]): Promise<Example[]> => {
    const examples: Example[] = [];
    const paths: string[] = [];
    for (const entry of Array.isArray(spec) ? spec : [spec]) {
      const resolved = await resolveDataFiles(entry, { ...resolveParams, split: role });
      const hub = resolved.map(hubPin).filter((p): p is string => p !== null);
      if (hub.length === resolved.length && hub.length > 0) pinned.set(entry, hub);
      for (const path of resolved) paths.push(path);
    }
    for (const path of paths) {
      const source = await readRecords(path);
      // Every file must be in the format the first one set (or the recipe names).
      const converted = toExamples(source, { format: format ?? "auto", fields: recipe.data.fields, hasChatTemplate, formatOrigin });
      if (format === null) formatOrigin = `the first data file ${path}`;
      format = converted.format;
      // A loop, not push(...spread): a spread of a few hundred thousand records overflows the call stack.
      converted.examples.forEach((example, index) => {
        examples.push(example);
        placed.push({ example, where: `${path}:${source.records[index]?.line ?? index + 1}` });
      });
      files.push({ path, pinned: hubPin(path), sha256: await sha256File(path), records: source.records.length, role });
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
  const warnings = [
    emptyExampleWarning(placed),
    datedTemplateWarning(placed, tokenizer.chatTemplate),
    validationSizeWarning({ validation: recipe.data.validation, records: all.length, validationExamples: split.validation.length }),
  ].filter((warning): warning is string => warning !== null);
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
    warnings,
    resolvedRecipe: (output, localModelDir) => {
      // Local files and globs are rewritten relative to the run directory, so the resolved recipe runs from there.
      const relocateOne = (spec: string): string | string[] => {
        const hub = pinned.get(spec);
        if (hub) return hub.length === 1 ? (hub[0] as string) : hub;
        const local = resolve(params.baseDir, spec);
        return existsSync(local) || /[*?[{]/.test(spec) ? relative(output, local) || "." : spec;
      };
      const relocateAll = (spec: string | string[]) => {
        const out = (Array.isArray(spec) ? spec : [spec]).flatMap(relocateOne);
        return out.length === 1 ? (out[0] as string) : out;
      };
      return {
        ...recipe,
        model: localModelDir ? { ...recipe.model, name: relative(output, localModelDir) || "." } : recipe.model,
        data: {
          ...recipe.data,
          format: resolvedFormat,
          train: relocateAll(recipe.data.train),
          validation: typeof recipe.data.validation === "number" ? recipe.data.validation : (relocateAll(recipe.data.validation) as string),
        },
      };
    },
  };
}

/** datasets/org/name@sha/file for a file inside the HF cache (…/datasets--org--name/snapshots/<sha>/file), else null. */
export function hubPin(path: string): string | null {
  const match = /[\\/]datasets--([^\\/]+)[\\/]snapshots[\\/]([0-9a-f]{40})[\\/](.+)$/.exec(path);
  if (!match) return null;
  const [, folder = "", sha = "", file = ""] = match;
  return `datasets/${folder.split("--").join("/")}@${sha}/${file.split("\\").join("/")}`;
}
