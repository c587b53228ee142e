import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { UserError } from "../errors.js";
import { NetworkFailure } from "./http.js";
import { RepoUnavailable } from "./hub-errors.js";
import { pullRepo, type PullEvent } from "./pull.js";
import { formatRepo, parseRepoRef, type RepoRef } from "./repo-ref.js";

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
  const kind = await stat(path).then((s) => (s.isDirectory() ? "folder" : "other"), () => "none");
  if (kind === "folder") return { dir: path, repo: null, sha: null };
  if (kind === "other") {
    throw new UserError(`model ${path} is a file; give the folder that holds config.json, the tokenizer and the weights, or a hub id like org/name.`);
  }
  if (looksLikePath(model)) throw new UserError(`model folder ${path} does not exist; give an existing folder or a hub id like org/name.`);
  // `mymodel`, `my/model` and `models/foo` are hub ids and relative folders alike: with no such folder they
  // go to the hub, and a failure there says that it was read as a hub id.
  let ref: RepoRef;
  try {
    ref = parseRepoRef(model);
  } catch (error) {
    if (!(error instanceof UserError)) throw error;
    throw new UserError(`no model folder ${path} exists, and ${error.message}`);
  }
  try {
    const pulled = await pullRepo({ ref, env: params.env, token: params.token, signal: params.signal, onEvent: params.onEvent });
    return { dir: pulled.path, repo: pulled.repo, sha: pulled.sha };
  } catch (error) {
    const readAs = `"${model}" was read as the hub id ${formatRepo(ref)} because no folder ${path} exists`;
    const local = `for a model on disk, give its folder's path (./${model.replace(/@.*$/, "")} or an absolute path)`;
    if (error instanceof RepoUnavailable) throw new RepoUnavailable(`${error.message} (${readAs}; ${local}.)`);
    if (error instanceof NetworkFailure) throw new NetworkFailure(`${error.message} ${readAs}; ${local}.`);
    throw error;
  }
}

function looksLikePath(value: string): boolean {
  return value.startsWith(".") || value.startsWith("/") || value.startsWith("~") || value.includes("\\") || value.split("/").length > 2;
}
