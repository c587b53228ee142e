import type { CommandContext } from "../context.js";
import { cacheRoot } from "../hub/cache-paths.js";
import { scanCache } from "../hub/cache-scan.js";
import { formatBytes } from "../ui/format.js";

/** `finetune cache ls`: repos in the HF cache with revision, size and files. */
export async function run(context: CommandContext, _args: string[], options: { cacheDir?: string }): Promise<void> {
  const scan = await scanCache(cacheRoot(options.cacheDir, context.env));
  for (const warning of scan.warnings) context.reporter.warn(warning);
  context.reporter.result(
    {
      cache: scan.root,
      size: scan.size,
      repos: scan.repos.map((repo) => ({
        repo: repo.repo,
        type: repo.type,
        size: repo.size,
        revisions: repo.revisions.map((r) => ({ sha: r.sha, refs: r.refs, size: r.size, files: r.files })),
      })),
    },
    (c) => {
      if (scan.repos.length === 0) return `${scan.root}: empty`;
      const lines = [`${scan.root} · ${scan.repos.length} repos · ${formatBytes(scan.size)}`];
      for (const repo of scan.repos) {
        lines.push(`${c.bold(repo.type === "dataset" ? `datasets/${repo.repo}` : repo.repo)}  ${formatBytes(repo.size)}`);
        for (const r of repo.revisions) {
          const refs = r.refs.length ? ` (${r.refs.join(", ")})` : "";
          lines.push(`  ${c.dim(r.sha)}${refs}  ${formatBytes(r.size)}  ${r.files.length} files: ${r.files.join(", ")}`);
        }
      }
      return lines.join("\n");
    },
  );
}
