import { readdir, readFile, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { minimatch } from "minimatch";
import { UserError } from "../errors.js";
import { pullRepo, type PullEvent } from "../hub/pull.js";
import { parseRepoRef } from "../hub/repo-ref.js";
import { configSplits, filesOfSplit } from "./hub-splits.js";
import { SUPPORTED_EXTENSIONS } from "./read-records.js";

export interface ResolveDataParams {
  /** Folder that relative paths and globs start from (the recipe's folder). */
  baseDir: string;
  env: NodeJS.ProcessEnv;
  token?: string | undefined;
  signal?: AbortSignal | undefined;
  onEvent?: ((event: PullEvent) => void) | undefined;
  /** Accept a hub dataset without fetching anything (`recipe validate` checks local files only). */
  localOnly?: boolean | undefined;
  /** Which split a hub dataset named without a file gives (see hub-splits.ts). Default train. */
  split?: "train" | "validation" | undefined;
}

const GLOB_CHARS = /[*?[{]/;
/** The dataset card, whose YAML front matter may list the files of each split. */
const CARD = "README.md";
// Dataset metadata the `datasets` library writes next to the data; never records.
const METADATA_FILES = new Set(["dataset_info.json", "dataset_infos.json", "dataset_dict.json", "state.json"]);

/**
 * Turns the recipe's `data.train` (or a validation file spec) into data files, in order. Each entry is, first
 * match wins: an existing file (relative to baseDir), a glob matched under baseDir, or a hub dataset
 * `org/name[@revision][/path/in/repo]` pulled into the HF cache (without a path: the data files of the wanted
 * split, found by the Hub's file-naming conventions).
 */
export async function resolveDataFiles(spec: string | string[], params: ResolveDataParams): Promise<string[]> {
  const files: string[] = [];
  // Loops, not push(...spread): a spread of a few hundred thousand paths overflows the call stack.
  for (const entry of Array.isArray(spec) ? spec : [spec]) for (const file of await resolveEntry(entry, params)) files.push(file);
  return files;
}

async function resolveEntry(entry: string, params: ResolveDataParams): Promise<string[]> {
  const local = resolve(params.baseDir, entry);
  const info = await stat(local).catch(() => null);
  if (info?.isFile()) return [local];
  if (info?.isDirectory()) {
    throw new UserError(`${entry} is a folder (relative to ${params.baseDir}); name its files or use a glob like ${entry}/*.jsonl`);
  }
  if (GLOB_CHARS.test(entry)) return globFiles(entry, params.baseDir);
  const hub = await hubSpec(entry, params.baseDir);
  if (hub) return params.localOnly ? [] : pullDataset(hub, params);
  throw new UserError(
    `no such file ${JSON.stringify(entry)} (relative to ${params.baseDir}); give a file, a glob like data/*.jsonl, ` +
      `or a hub dataset org/name[/file].`,
  );
}

/** More files than any dataset we could train on is sharded into; past it a glob is almost surely too wide. */
export const MAX_GLOB_FILES = 10_000;

/** Walks only below the pattern's literal leading folders, so `../data/*.jsonl` and absolute patterns work too. */
async function globFiles(pattern: string, baseDir: string): Promise<string[]> {
  const parts = pattern.split("/");
  const firstMagic = parts.findIndex((part) => GLOB_CHARS.test(part));
  const literal = parts.slice(0, firstMagic).join("/");
  const rest = parts.slice(firstMagic).join("/");
  const root = isAbsolute(pattern) ? resolve(literal === "" ? "/" : literal) : resolve(baseDir, literal);
  const matches = await walk(root, (path) => minimatch(relative(root, path).split(sep).join("/"), rest));
  if (matches.length === 0) {
    throw new UserError(`no file matches ${JSON.stringify(pattern)} in ${root}; check the pattern and the folder (relative to ${baseDir}).`);
  }
  if (matches.length > MAX_GLOB_FILES) {
    throw new UserError(
      `${JSON.stringify(pattern)} matches ${matches.length} files in ${root}, more than the ${MAX_GLOB_FILES} a dataset is sensibly split into; ` +
        `narrow the pattern (e.g. one folder, or *.jsonl without **), or merge the files into fewer, larger ones.`,
    );
  }
  return matches.sort();
}

/**
 * The files below `root` that `keep` accepts, walked breadth-first with a queue (no recursion, no spreads, so a
 * tree of any size or depth fits). Hidden folders are skipped (minimatch would not match them anyway) and
 * symlinked folders are not followed, so cycles cannot loop.
 */
async function walk(root: string, keep: (path: string) => boolean): Promise<string[]> {
  const files: string[] = [];
  const folders = [root];
  for (let next = 0; next < folders.length; next += 1) {
    const dir = folders[next] ?? root;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!entry.name.startsWith(".")) folders.push(path);
      } else if (keep(path) && (entry.isFile() || (entry.isSymbolicLink() && (await stat(path).catch(() => null))?.isFile()))) {
        files.push(path);
      }
    }
  }
  return files;
}

interface HubSpec {
  repo: string;
  path: string | null;
}

/**
 * `org/name[@rev][/path]`, unless it reads as a local path that does not exist: a leading `.`, `/` or `~`, a
 * first folder that exists under baseDir, or a data file extension on the name (`data/train.jsonl` is a typo'd
 * local file far more often than a repo called "train.jsonl").
 */
async function hubSpec(entry: string, baseDir: string): Promise<HubSpec | null> {
  const withoutPrefix = entry.startsWith("datasets/") ? entry.slice("datasets/".length) : entry;
  if (/^[.~/\\]/.test(withoutPrefix)) return null;
  const [org, name, ...path] = withoutPrefix.split("/");
  if (org === undefined || name === undefined || org === "" || name === "") return null;
  if (path.length === 0 && SUPPORTED_EXTENSIONS.some((extension) => name.toLowerCase().endsWith(extension))) return null;
  if ((await stat(resolve(baseDir, org)).catch(() => null))?.isDirectory()) return null;
  if (!/^[A-Za-z0-9][\w.-]*$/.test(org) || !/^[A-Za-z0-9][\w.-]*(@[^/]+)?$/.test(name)) return null;
  return { repo: `${org}/${name}`, path: path.length > 0 ? path.join("/") : null };
}

async function pullDataset(spec: HubSpec, params: ResolveDataParams): Promise<string[]> {
  const ref = parseRepoRef(spec.repo, { dataset: true });
  const include = spec.path === null ? SUPPORTED_EXTENSIONS.map((extension) => `*${extension}`) : [spec.path];
  const split = params.split ?? "train";
  const pull = (patterns: string[], select: (paths: string[]) => string[], onEvent: ResolveDataParams["onEvent"]) =>
    pullRepo({ ref, env: params.env, token: params.token, signal: params.signal, onEvent, include: patterns, select });
  // The dataset card first (if any, quietly: a few KB): its `configs:` may say which files make which split.
  let assign: ((paths: string[]) => Map<string, string>) | undefined;
  if (spec.path === null) {
    const card = await pull([CARD, ...include], (paths) => paths.filter((path) => path === CARD), undefined);
    const readme = card.files.includes(CARD) ? await readFile(join(card.path, CARD), "utf8") : null;
    assign = (readme !== null ? configSplits(readme, ref.name) : null) ?? undefined;
  }
  // Without a path, only the wanted split's files are downloaded (never a test split that would go unused).
  const select = (paths: string[]): string[] => {
    const data = paths.filter((file) => (spec.path === null ? !METADATA_FILES.has(file.split("/").pop() ?? "") : file === spec.path));
    if (data.length === 0) {
      const what = spec.path === null ? "no data files (.jsonl, .json, .csv, .parquet, .txt)" : `no file ${JSON.stringify(spec.path)}`;
      throw new UserError(`hub dataset ${ref.name} has ${what}; it has: ${paths.slice(0, 12).join(", ") || "nothing"}.`);
    }
    if (spec.path !== null) return data;
    const { files, splits } = filesOfSplit(data.sort(), split, assign);
    if (files.length === 0) {
      const instead = split === "validation" ? "use a held-out fraction (data.validation: 0.05) or name a file" : "name its files";
      throw new UserError(
        `hub dataset ${ref.name} has no ${split} split (its data files make the split${splits.length === 1 ? "" : "s"} ${splits.join(", ")}); ` +
          `${instead}, e.g. ${ref.name}/${data[0] ?? "<file>"}.`,
      );
    }
    return files;
  };
  const result = await pull(include, select, params.onEvent);
  return result.files.sort().map((file) => join(result.path, file));
}
