import type { CommandContext } from "../context.js";
import { Interrupted } from "../errors.js";
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

/** `finetune pull <org/name>[@revision]`: download into the HF cache, pinned to a commit sha. */
export async function run(context: CommandContext, args: string[], options: PullOptions): Promise<void> {
  const ref = parseRepoRef(args[0] ?? "", { dataset: options.dataset, revision: options.revision });
  const { token } = resolveToken({ flag: options.token, env: context.env });
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
