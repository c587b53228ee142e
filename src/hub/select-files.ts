import { minimatch } from "minimatch";
import { UserError } from "../errors.js";
import type { RepoType } from "./repo-ref.js";

/** What a model needs to load: config, tokenizer, chat template and safetensors weights. */
export const DEFAULT_MODEL_FILES = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
  "*.safetensors",
  "model.safetensors.index.json",
];

/** Formats that can run code when loaded (pickle) or that we never load: never fetched by default. */
export const UNSAFE_OR_FOREIGN = ["*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt", "*.h5", "*.msgpack", "*.onnx", "*.onnx_data", "*.gguf", "*.ot", "*.tflite", "*.mlmodel", "*.npz", "*.joblib"];
const PICKLE_WEIGHTS = ["*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt"];

const match = (path: string, patterns: string[]): boolean =>
  patterns.some((pattern) => minimatch(path, pattern, { matchBase: !pattern.includes("/"), dot: true }));

/**
 * Picks the files to download. `include` replaces the default set. Models: the default set; a repo whose weights
 * exist only as pickle is refused. Datasets: every file except pickle/foreign binaries.
 */
export function selectFiles<T extends { path: string }>(files: T[], params: { type: RepoType; include?: string[] | undefined; repo: string }): T[] {
  if (params.include && params.include.length > 0) {
    const include = params.include;
    const selected = files.filter((file) => match(file.path, include));
    if (selected.length === 0) {
      throw new UserError(`${params.repo}: no file matches --include ${include.join(" ")}; the repo has: ${listSome(files)}.`);
    }
    return selected;
  }
  if (params.type === "dataset") return files.filter((file) => !match(file.path, UNSAFE_OR_FOREIGN));
  // Top-level model files only: subfolders hold other variants (onnx/, original/, …).
  const topLevel = files.filter((file) => !file.path.includes("/"));
  const selected = topLevel.filter((file) => match(file.path, DEFAULT_MODEL_FILES));
  const hasSafetensors = selected.some((file) => file.path.endsWith(".safetensors"));
  const pickles = topLevel.filter((file) => match(file.path, PICKLE_WEIGHTS));
  if (!hasSafetensors && pickles.length > 0) {
    throw new UserError(
      `${params.repo} has weights only in pickle form (${pickles.map((f) => f.path).join(", ")}), which can run code when loaded; ` +
        `finetune loads safetensors only. Look for a safetensors version of this model on the hub ` +
        `(many repos have one under "refs/pr/…" or a "-safetensors" fork).`,
    );
  }
  if (selected.length === 0) {
    throw new UserError(`${params.repo} has none of the files a model needs (${DEFAULT_MODEL_FILES.join(", ")}); it has: ${listSome(files)}. Use --include to pick files.`);
  }
  return selected;
}

function listSome(files: { path: string }[]): string {
  const names = files.slice(0, 12).map((file) => file.path);
  return names.length === 0 ? "no files" : names.join(", ") + (files.length > 12 ? `, … (${files.length} files)` : "");
}
