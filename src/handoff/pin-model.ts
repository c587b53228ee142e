import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { UserError } from "../errors.js";
import { cacheRoot, repoCachePaths } from "../hub/cache-paths.js";
import { findCachedSnapshot } from "../hub/offline.js";
import { COMMIT_SHA, formatRepo, parseRepoRef } from "../hub/repo-ref.js";
import { isDirectory } from "../hub/snapshot-files.js";
import { LOCK_FILE, readRunLock } from "../train/lock.js";

/** The base model as the hand-off names it: a hub repo at a commit, or a local folder (which no commit pins). */
export type PinnedModel =
  | { kind: "hub"; repo: string; sha: string; dir: string; pinnedBy: "recipe" | "lock" | "cache" }
  | { kind: "local"; dir: string };

const exists = (path: string) => stat(path).then(() => true, () => false);

/**
 * Pins the recipe's model to a commit without asking the hub, in this order: a sha written in the recipe
 * (`org/name@<sha>`), the run.lock.json of a run of this recipe (in its output folder, or next to the recipe) for
 * the same repo, then the HF cache's ref for the named revision. The snapshot must be cached too: the tokenizer and
 * chat template decide how the data is converted, exactly as `finetune train` would render it. A model that cannot
 * be pinned is refused: a distributed run on "whatever main is today" is not the same run.
 */
export async function pinModel(params: { name: string; baseDir: string; output: string; env: NodeJS.ProcessEnv; cacheDir?: string | undefined }): Promise<PinnedModel> {
  const { name } = params;
  const expanded = name.startsWith("~/") ? `${homedir()}${name.slice(1)}` : name;
  const local = isAbsolute(expanded) ? expanded : resolve(params.baseDir, expanded);
  if (await isDirectory(local)) return { kind: "local", dir: local };
  const ref = parseRepoRef(name);
  const repo = formatRepo(ref);
  const root = cacheRoot(params.cacheDir, params.env);
  const paths = repoCachePaths(root, ref);

  let sha: string | null = null;
  let pinnedBy: "recipe" | "lock" | "cache" = "recipe";
  if (ref.revision !== undefined && COMMIT_SHA.test(ref.revision)) sha = ref.revision;
  if (sha === null) {
    for (const lockPath of [join(resolve(params.output), LOCK_FILE), join(params.baseDir, LOCK_FILE)]) {
      if (!(await exists(lockPath))) continue;
      const lock = await readRunLock(lockPath);
      // Only a lock of this very model reference: a run of `org/name@v1` does not pin `org/name@v2`.
      const locked = lock.recipe.model;
      const lockedName = typeof locked === "string" ? locked : typeof locked === "object" && locked !== null && "name" in locked ? locked.name : undefined;
      if (lock.model.repo === ref.name && lock.model.revision !== null && (lockedName === undefined || lockedName === name)) {
        sha = lock.model.revision;
        pinnedBy = "lock";
        break;
      }
    }
  }
  if (sha === null) {
    const cached = await findCachedSnapshot(paths, ref);
    if (cached) {
      sha = cached.sha;
      pinnedBy = "cache";
    }
  }
  if (sha === null) {
    throw new UserError(
      `model ${name} cannot be pinned to a commit: the recipe names no commit sha, no ${LOCK_FILE} of a run of it names ${repo}, ` +
        `and ${repo}@${ref.revision ?? "main"} is not in the cache at ${root}. Run \`finetune pull ${name}\` (it records the commit), ` +
        `or write model: ${repo}@<commit sha>, then export again.`,
    );
  }
  const dir = join(paths.snapshots, sha);
  if (!(await isDirectory(dir))) {
    throw new UserError(
      `model ${repo} is pinned to ${sha} (by the ${pinnedBy === "lock" ? LOCK_FILE : "recipe"}), but that snapshot is not in the cache at ${root}; ` +
        `export-recipe reads its tokenizer and chat template to convert the data as train does. Run \`finetune pull ${repo}@${sha}\`, then export again.`,
    );
  }
  return { kind: "hub", repo, sha, dir, pinnedBy };
}
