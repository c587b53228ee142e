import type { CommandContext } from "../context.js";
import { UserError } from "../errors.js";
import { cacheRoot } from "../hub/cache-paths.js";
import { removeCachedRepo, scanCache } from "../hub/cache-scan.js";
import { formatRepo, parseRepoRef } from "../hub/repo-ref.js";
import { formatBytes } from "../ui/format.js";

/** `finetune cache rm <repo>`: delete one cached repo, every revision of it. */
export async function run(context: CommandContext, args: string[], options: { cacheDir?: string; dataset?: boolean }): Promise<void> {
  const ref = parseRepoRef(args[0] ?? "", { dataset: options.dataset });
  if (ref.revision !== undefined) throw new UserError(`cache rm removes a whole repo; drop "@${ref.revision}" from "${args[0] ?? ""}".`);
  const scan = await scanCache(cacheRoot(options.cacheDir, context.env));
  const repo = scan.repos.find((r) => r.type === ref.type && r.repo === ref.name);
  if (!repo) {
    const known = scan.repos.map((r) => formatRepo({ type: r.type, name: r.repo }));
    throw new UserError(`${formatRepo(ref)} is not in the cache at ${scan.root}${known.length ? `; cached: ${known.join(", ")}` : " (the cache is empty)"}.`);
  }
  const freed = await removeCachedRepo(repo);
  context.reporter.result({ removed: formatRepo(ref), path: repo.path, freed_bytes: freed }, () => `removed ${formatRepo(ref)} (${formatBytes(freed)} freed)`);
}
