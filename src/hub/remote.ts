import { datasetInfo, listFiles, modelInfo } from "@huggingface/hub";
import { z } from "zod";
import { assertSafeBlobName, assertSafeRepoPath } from "./cache-paths.js";
import { explainHubError, malformed, type HubErrorContext } from "./hub-errors.js";

/** One file of a repo at a commit, as the tree endpoint lists it. */
export interface RemoteFile {
  path: string;
  size: number;
  /** The cache blob name: the LFS sha256 for large files, else the git blob sha1 (Python uses the same). */
  blobName: string;
  /** Present for LFS files: the content's sha256, checked after download. */
  sha256?: string;
  /** Present for small (git) files: the git blob sha1, checked after download. */
  gitOid?: string;
}

const shaSchema = z.string().regex(/^[0-9a-f]{40}$/, "a 40-character commit sha");

/** Resolves a branch, tag or sha to the commit sha. Always call this before downloading anything. */
export async function resolveRevision(context: HubErrorContext): Promise<string> {
  const { ref, endpoint, http } = context;
  const params = { name: ref.name, revision: ref.revision ?? "main", hubUrl: endpoint, fetch: http.fetch };
  let info: unknown;
  try {
    info =
      ref.type === "dataset"
        ? await datasetInfo({ ...params, additionalFields: ["sha"] })
        : await modelInfo({ ...params, additionalFields: ["sha"] });
  } catch (error) {
    throw explainHubError(error, context);
  }
  const parsed = z.object({ sha: shaSchema }).safeParse(info);
  if (!parsed.success) throw malformed(endpoint, `revision info without a valid "sha"`);
  return parsed.data.sha;
}

const treeEntrySchema = z.object({
  type: z.enum(["file", "directory", "unknown"]),
  path: z.string(),
  size: z.number().int().nonnegative().optional(),
  oid: z.string().optional(),
  lfs: z.object({ oid: z.string(), size: z.number().int().nonnegative() }).optional(),
});

/** Lists every file of the repo at `sha` (paginated by the library), validating each entry. */
export async function listRemoteFiles(context: HubErrorContext, sha: string): Promise<RemoteFile[]> {
  const { ref, endpoint, http } = context;
  const files: RemoteFile[] = [];
  try {
    const entries = listFiles({
      repo: { type: ref.type, name: ref.name },
      revision: sha,
      recursive: true,
      hubUrl: endpoint,
      fetch: http.fetch,
    });
    for await (const raw of entries) {
      const parsed = treeEntrySchema.safeParse(raw);
      if (!parsed.success) throw malformed(endpoint, `a tree entry is not {type, path, size, oid}: ${parsed.error.issues[0]?.message ?? ""}`);
      const entry = parsed.data;
      if (entry.type !== "file") continue;
      assertSafeRepoPath(entry.path);
      files.push(toRemoteFile(entry, endpoint));
    }
  } catch (error) {
    throw explainHubError(error, context);
  }
  return files;
}

function toRemoteFile(entry: z.infer<typeof treeEntrySchema>, endpoint: string): RemoteFile {
  if (entry.lfs) {
    assertSafeBlobName(entry.lfs.oid, entry.path);
    if (entry.lfs.oid.length !== 64) throw malformed(endpoint, `LFS oid of ${entry.path} is not a sha256`);
    return { path: entry.path, size: entry.lfs.size, blobName: entry.lfs.oid, sha256: entry.lfs.oid };
  }
  if (entry.oid === undefined || entry.size === undefined) throw malformed(endpoint, `${entry.path} has no oid or size`);
  assertSafeBlobName(entry.oid, entry.path);
  return { path: entry.path, size: entry.size, blobName: entry.oid, gitOid: entry.oid };
}
