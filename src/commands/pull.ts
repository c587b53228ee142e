import type { CommandContext } from "../context.js";
import { resolve } from "node:path";
import { Interrupted } from "../errors.js";
import { isOffline } from "../hub/endpoint.js";
import { checkOutputPath, checkPathLength } from "../io/output-path.js";
import { pullRepo } from "../hub/pull.js";
import { parseRepoRef } from "../hub/repo-ref.js";
import { resolveToken } from "../hub/token.js";
import { transferProgress } from "../ui/transfer-progress.js";

interface PullOptions {
  revision?: string;
  include?: string[];
  cacheDir?: string;
  token?: string;
  dataset?: boolean;
  force?: boolean;
}

/** Bytes below the cache root its deepest path needs (models--org--name/snapshots/<sha>/<file>), short of long file names. */
const CACHE_RESERVE = 256;

/** `finetune pull <org/name>[@revision]`: download into the HF cache, pinned to a commit sha. */
export async function run(context: CommandContext, args: string[], options: PullOptions): Promise<void> {
  const ref = parseRepoRef(args[0] ?? "", { dataset: options.dataset, revision: options.revision });
  const { token } = resolveToken({ flag: options.token, env: context.env });
  // Before anything is downloaded. Offline, a read-only cache still serves what it holds, so only its length counts.
  if (options.cacheDir !== undefined) {
    if (isOffline(context.env)) checkPathLength(resolve(options.cacheDir), { flag: "--cache-dir" });
    else await checkOutputPath({ path: options.cacheDir, flag: "--cache-dir", kind: "directory", reserve: CACHE_RESERVE });
  }
  const progress = transferProgress(context.reporter);
  try {
    const result = await pullRepo({
      ref,
      env: context.env,
      cacheDir: options.cacheDir,
      include: options.include,
      force: options.force,
      token,
      signal: context.signal,
      onEvent: progress.onEvent,
    });
    progress.finish();
    context.reporter.result(result, (c) =>
      [`${c.bold(result.repo)}@${result.revision} ${c.dim(result.sha)}`, `${result.path}`, ...result.files.map((f) => `  ${f}`)].join("\n"),
    );
  } catch (error) {
    if (error instanceof Interrupted) {
      throw new Interrupted(`interrupted: partial downloads are kept in the cache; run \`finetune pull ${args[0] ?? ""}\` again to resume.`);
    }
    throw error;
  } finally {
    progress.finish();
  }
}
