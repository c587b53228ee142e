import { join } from "node:path";
import { UserError } from "../errors.js";
import type { RepoCachePaths } from "./cache-paths.js";
import { COMMIT_SHA, formatRepo, type RepoRef } from "./repo-ref.js";
import { isDirectory, listSnapshot, readRef } from "./snapshot-files.js";

/** A snapshot found in the cache without asking the hub: its sha, folder and files. */
export interface CachedSnapshot {
  sha: string;
  path: string;
  files: string[];
}

/** Resolves a revision from refs/ and snapshots/ only; null when that revision is not cached. */
export async function findCachedSnapshot(paths: RepoCachePaths, ref: RepoRef): Promise<CachedSnapshot | null> {
  const revision = ref.revision ?? "main";
  const sha = COMMIT_SHA.test(revision) ? revision : await readRef(paths, revision);
  if (!sha) return null;
  const path = join(paths.snapshots, sha);
  if (!(await isDirectory(path))) return null;
  return { sha, path, files: await listSnapshot(path) };
}

export function notCachedError(ref: RepoRef, root: string, why: string): UserError {
  return new UserError(
    `${formatRepo(ref)}@${ref.revision ?? "main"} is not in the cache at ${root}, and ${why}. ` +
      `Pull it while online (\`finetune pull ${formatRepo(ref)}\`), or point --cache-dir / HF_HUB_CACHE at a cache that has it.`,
  );
}
