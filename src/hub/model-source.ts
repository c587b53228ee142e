import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { UserError } from "../errors.js";
import { pullRepo, type PullEvent } from "./pull.js";
import { parseRepoRef } from "./repo-ref.js";

export interface ModelSource {
  /** Folder with config.json, tokenizer and weights. */
  dir: string;
  /** Hub repo id, or null for a local folder. */
  repo: string | null;
  /** Commit sha the files come from, or null for a local folder. */
  sha: string | null;
}

/**
 * Anywhere a model is named: an existing local folder, or a hub id `org/name[@revision]` that is pulled
 * (or found in the cache) with the default model file set. Paths are resolved against `baseDir`.
 */
export async function resolveModelSource(params: {
  model: string;
  env: NodeJS.ProcessEnv;
  baseDir?: string;
  token?: string | undefined;
  signal?: AbortSignal | undefined;
  onEvent?: (event: PullEvent) => void;
}): Promise<ModelSource> {
  const { model } = params;
  const expanded = model.startsWith("~/") ? `${homedir()}${model.slice(1)}` : model;
  const path = isAbsolute(expanded) ? expanded : resolve(params.baseDir ?? process.cwd(), expanded);
  const isDir = await stat(path).then((s) => s.isDirectory()).catch(() => false);
  if (isDir) return { dir: path, repo: null, sha: null };
  if (looksLikePath(model)) throw new UserError(`model folder ${path} does not exist; give an existing folder or a hub id like org/name.`);
  const ref = parseRepoRef(model);
  const pulled = await pullRepo({ ref, env: params.env, token: params.token, signal: params.signal, onEvent: params.onEvent });
  return { dir: pulled.path, repo: pulled.repo, sha: pulled.sha };
}

function looksLikePath(value: string): boolean {
  return value.startsWith(".") || value.startsWith("/") || value.startsWith("~") || value.includes("\\") || value.split("/").length > 2;
}
