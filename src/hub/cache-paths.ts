import { homedir } from "node:os";
import { isAbsolute, join, posix, resolve } from "node:path";
import { UserError } from "../errors.js";
import type { RepoRef } from "./repo-ref.js";

/**
 * The HF cache root, resolved as Python's huggingface_hub does: HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE,
 * HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub. `--cache-dir` wins over all.
 */
export function cacheRoot(override: string | undefined, env: NodeJS.ProcessEnv): string {
  if (override) return resolve(override);
  const fromEnv = env.HF_HUB_CACHE ?? env.HUGGINGFACE_HUB_CACHE;
  if (fromEnv) return resolve(fromEnv);
  return resolve(hfHome(env), "hub");
}

/** HF_HOME, else XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (the cache and the token live there). */
export function hfHome(env: NodeJS.ProcessEnv): string {
  return env.HF_HOME ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "huggingface");
}

/** `models--org--name` / `datasets--org--name`, the folder name Python uses. */
export function repoFolderName(ref: Pick<RepoRef, "type" | "name">): string {
  return [`${ref.type}s`, ...ref.name.split("/")].join("--");
}

export interface RepoCachePaths {
  repo: string;
  blobs: string;
  snapshots: string;
  refs: string;
}

export function repoCachePaths(root: string, ref: Pick<RepoRef, "type" | "name">): RepoCachePaths {
  const repo = join(root, repoFolderName(ref));
  return { repo, blobs: join(repo, "blobs"), snapshots: join(repo, "snapshots"), refs: join(repo, "refs") };
}

/**
 * Checks a file name that came from the server before anything is written for it: relative, forward slashes,
 * no `..` or `.` segments, no NUL. A hostile server must never make us write outside the cache.
 */
export function assertSafeRepoPath(path: string): void {
  const bad =
    path === "" ||
    isAbsolute(path) ||
    path.startsWith("/") ||
    /^[A-Za-z]:/.test(path) ||
    path.includes("\\") ||
    path.includes("\0") ||
    path.split("/").some((part) => part === ".." || part === "." || part === "");
  if (bad || posix.normalize(path) !== path) {
    throw new UserError(
      `the hub listed a file named ${JSON.stringify(path)}, which would be written outside the cache; refusing. ` +
        `If HF_ENDPOINT points at a mirror, check that it is a genuine hub.`,
    );
  }
}

/** A blob name is an etag: a git sha1 or an LFS sha256, lowercase hex. */
export function assertSafeBlobName(oid: string, path: string): void {
  if (!/^[0-9a-f]{40}$|^[0-9a-f]{64}$/.test(oid)) {
    throw new UserError(`the hub gave ${JSON.stringify(path)} an invalid object id ${JSON.stringify(oid)}; refusing.`);
  }
}
