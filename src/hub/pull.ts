import { mkdir, rm, stat, statfs } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, Interrupted, RuntimeFailure, UserError } from "../errors.js";
import { acquireLock, describeOwner, LockBusy, type LockOwner } from "../io/file-lock.js";
import { formatBytes } from "../ui/format.js";
import { cacheRoot, repoCachePaths, type RepoCachePaths } from "./cache-paths.js";
import { downloadBlob } from "./download-blob.js";
import { hubEndpoint, isOffline } from "./endpoint.js";
import { hubLimits, type HubLimits } from "./hub-limits.js";
import { createHubHttp, NetworkFailure } from "./http.js";
import { explainHubError, type HubErrorContext } from "./hub-errors.js";
import { findCachedSnapshot, notCachedError, type CachedSnapshot } from "./offline.js";
import { listRemoteFiles, resolveRevision, type RemoteFile } from "./remote.js";
import { maskUrl } from "./redact.js";
import { formatRepo, type RepoRef } from "./repo-ref.js";
import { selectFiles } from "./select-files.js";
import { linkSnapshotFile, writeRef } from "./snapshot-files.js";

export interface PullParams {
  ref: RepoRef;
  env: NodeJS.ProcessEnv;
  /** Cache root override (`--cache-dir`). */
  cacheDir?: string | undefined;
  /** Globs replacing the default file set. */
  include?: string[] | undefined;
  /** Narrows the selected paths further, seeing all of them (one split of a dataset); may throw a UserError. */
  select?: ((paths: string[]) => string[]) | undefined;
  /** Re-download files even when their blob is cached. */
  force?: boolean;
  token?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Files downloaded at once. Default 3. */
  concurrency?: number;
  onEvent?: (event: PullEvent) => void;
}

export interface PullResult {
  repo: string;
  revision: string;
  sha: string;
  path: string;
  files: string[];
}

export type PullEvent =
  | { type: "resolved"; repo: string; revision: string; sha: string; files: number; bytes: number; cachedBytes: number }
  | { type: "file-start"; path: string; size: number; resumeFrom: number }
  | { type: "bytes"; path: string; bytes: number }
  | { type: "file-done"; path: string; size: number; downloaded: boolean }
  | { type: "retry"; url: string; path?: string; attempt: number; attempts?: number; reason: string; delayMs: number }
  | { type: "lock-wait"; path: string; owner: LockOwner }
  | { type: "offline"; reason: string };

/**
 * Resolves the revision to a sha, lists the tree, and downloads the selected files into the HF cache
 * (blobs/, snapshots/<sha>/ symlinks, refs/<revision>), resuming partial files and verifying checksums.
 */
export async function pullRepo(params: PullParams): Promise<PullResult> {
  const { ref } = params;
  const root = cacheRoot(params.cacheDir, params.env);
  const paths = repoCachePaths(root, ref);
  const revision = ref.revision ?? "main";
  const repo = formatRepo(ref);

  const narrow = <T>(files: T[], pathOf: (file: T) => string): T[] => {
    if (!params.select) return files;
    const keep = new Set(params.select(files.map(pathOf)));
    return files.filter((file) => keep.has(pathOf(file)));
  };
  const fromCache = (cached: CachedSnapshot, reason: string): PullResult => {
    params.onEvent?.({ type: "offline", reason });
    const files = params.include ? selectFiles(cached.files.map((path) => ({ path })), { type: ref.type, include: params.include, repo }).map((f) => f.path) : cached.files;
    return { repo, revision, sha: cached.sha, path: cached.path, files: narrow(files, (path) => path) };
  };

  if (isOffline(params.env)) {
    const cached = await findCachedSnapshot(paths, ref);
    if (!cached) throw notCachedError(ref, root, "HF_HUB_OFFLINE is set");
    return fromCache(cached, "HF_HUB_OFFLINE is set");
  }

  const endpoint = hubEndpoint(params.env);
  const limits = hubLimits(params.env);
  const http = createHubHttp({
    endpoint,
    token: params.token,
    signal: params.signal,
    maxRetryAfterMs: limits.maxRetryAfterMs,
    stallMs: limits.stallMs,
    onRetry: (info) => params.onEvent?.({ type: "retry", url: info.url, attempt: info.attempt, attempts: info.attempts, reason: info.reason, delayMs: info.delayMs }),
  });
  const context: HubErrorContext = { ref, endpoint, http, hasToken: params.token !== undefined };

  // 1. Resolve the revision to a commit sha: every file is then fetched at that exact commit. When the hub cannot
  //    be reached at all, a snapshot already in the cache is used (as huggingface_hub does), with a notice.
  let sha: string;
  try {
    sha = await resolveRevision(context);
  } catch (error) {
    if (!(error instanceof NetworkFailure)) throw error;
    const cached = await findCachedSnapshot(paths, ref);
    if (!cached) {
      throw new NetworkFailure(
        `${error.message} ${repo}@${revision} is not in the cache at ${root} either: pull it once the hub answers ` +
          `(or on another machine and copy the cache, pointing HF_HUB_CACHE at it), then HF_HUB_OFFLINE=1 uses the cache only.`,
      );
    }
    return fromCache(cached, `${maskUrl(endpoint)} is unreachable`);
  }
  // 2. List the tree at that sha and pick the files to fetch.
  const files = narrow(selectFiles(await listRemoteFiles(context, sha), { type: ref.type, include: params.include, repo }), (file) => file.path);
  await prepareDirs(paths, root);
  if (params.force) await Promise.all(files.map((file) => rm(join(paths.blobs, file.blobName), { force: true })));
  // Files with identical content share one blob: fetch each blob once, then link every path to it.
  const groups = groupByBlob(files);
  const plan = await Promise.all(groups.map(async (group) => ({ group, cached: await blobComplete(paths, group[0] as RemoteFile) })));
  const cachedBytes = plan.filter((p) => p.cached).reduce((sum, p) => sum + (p.group[0]?.size ?? 0), 0);
  const totalBytes = plan.reduce((sum, p) => sum + (p.group[0]?.size ?? 0), 0);
  params.onEvent?.({ type: "resolved", repo, revision, sha, files: files.length, bytes: totalBytes, cachedBytes });
  await checkFreeSpace(paths, plan.filter((p) => !p.cached).map((p) => p.group[0] as RemoteFile), root);

  // 3. Download what is missing, a few blobs at a time; link each path into the snapshot as its blob completes.
  //    The first failure stops the other workers, and every worker has finished (and released its lock) before
  //    the error goes up: nothing keeps running, or holding a lock, behind the error message.
  const stopOthers = new AbortController();
  const signal = params.signal ? AbortSignal.any([params.signal, stopOthers.signal]) : stopOthers.signal;
  const queue = [...plan];
  const worker = async (): Promise<void> => {
    for (let item = queue.shift(); item && !signal.aborted; item = queue.shift()) {
      const { group, cached } = item;
      const file = group[0] as RemoteFile;
      if (!cached) {
        await guardWrite(root, file.path, () =>
          downloadLocked({
            url: resolveUrl(endpoint, ref, sha, file.path),
            file,
            blobPath: join(paths.blobs, file.blobName),
            http,
            signal,
            stallMs: limits.stallMs,
            onStart: (resumeFrom) => params.onEvent?.({ type: "file-start", path: file.path, size: file.size, resumeFrom }),
            onBytes: (bytes) => params.onEvent?.({ type: "bytes", path: file.path, bytes }),
            onRetry: (info) => params.onEvent?.({ type: "retry", url: file.path, path: file.path, attempt: info.attempt, reason: info.reason, delayMs: info.delayMs }),
            explain: async (response) => {
              const error = await hubApiError(response);
              return explainHubError(error, { ...context, path: file.path });
            },
          }, limits, (owner) => params.onEvent?.({ type: "lock-wait", path: file.path, owner })),
        );
      }
      for (const member of group) {
        await guardWrite(root, member.path, () => linkSnapshotFile(paths, sha, member.path, member.blobName));
        params.onEvent?.({ type: "file-done", path: member.path, size: member.size, downloaded: !cached && member === file });
      }
    }
  };
  const outcomes = await Promise.allSettled(
    Array.from({ length: Math.max(1, params.concurrency ?? 3) }, () =>
      worker().catch((error: unknown) => {
        stopOthers.abort();
        throw error;
      }),
    ),
  );
  const failures = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason as unknown] : []));
  // The first real failure, not the "interrupted" of the workers it stopped.
  const failure = failures.find((e) => !(e instanceof Interrupted)) ?? failures[0];
  if (failure !== undefined) throw failure;
  if (params.signal?.aborted) throw new Interrupted("interrupted");

  // 4. Record the branch or tag → sha mapping last, so a ref never points at an incomplete snapshot.
  if (revision !== sha) await guardWrite(root, `refs/${revision}`, () => writeRef(paths, revision, sha));
  return { repo, revision, sha, path: join(paths.snapshots, sha), files: files.map((file) => file.path).sort() };
}

/**
 * Another finetune (or a second terminal) may be fetching the same blob: one process downloads, the other waits,
 * saying so, for as long as the owner's partial file keeps growing (bounded by the lock-wait limit otherwise).
 */
async function downloadLocked(params: Parameters<typeof downloadBlob>[0], limits: HubLimits, onWait: (owner: LockOwner) => void): Promise<number> {
  const lock = `${params.blobPath}.lock`;
  let release: () => Promise<void>;
  try {
    release = await acquireLock(lock, {
      signal: params.signal,
      waitMs: limits.lockWaitMs,
      progress: () => stat(`${params.blobPath}.incomplete`).then((s) => s.size, () => -1),
      onWait,
    });
  } catch (error) {
    if (!(error instanceof LockBusy)) throw error;
    throw new UserError(
      `${params.file.path}: its download is locked by ${describeOwner(error.owner)}, and nothing was downloaded for ` +
        `${Math.round(error.waitedMs / 1000)} s. If no other finetune is pulling this repo, delete ${lock} and run again ` +
        `(FINETUNE_HUB_LOCK_WAIT_SECONDS sets how long to wait).`,
    );
  }
  try {
    // Another process may have finished this blob while we waited for the lock.
    if (await hasSize(params.blobPath, params.file.size)) return 0;
    return await downloadBlob(params);
  } finally {
    await release();
  }
}

function groupByBlob(files: RemoteFile[]): RemoteFile[][] {
  const groups = new Map<string, RemoteFile[]>();
  for (const file of files) groups.set(file.blobName, [...(groups.get(file.blobName) ?? []), file]);
  return [...groups.values()];
}

export function resolveUrl(endpoint: string, ref: RepoRef, sha: string, path: string): string {
  const prefix = ref.type === "dataset" ? "datasets/" : "";
  return `${endpoint}/${prefix}${ref.name}/resolve/${sha}/${path.split("/").map(encodeURIComponent).join("/")}`;
}

function blobComplete(paths: RepoCachePaths, file: RemoteFile): Promise<boolean> {
  return hasSize(join(paths.blobs, file.blobName), file.size);
}

function hasSize(path: string, size: number): Promise<boolean> {
  return stat(path).then((s) => s.size === size, () => false);
}

async function prepareDirs(paths: RepoCachePaths, root: string): Promise<void> {
  await guardWrite(root, "blobs/", async () => {
    await mkdir(paths.blobs, { recursive: true });
    await mkdir(paths.snapshots, { recursive: true });
    await mkdir(paths.refs, { recursive: true });
  });
}

/** Refuses before downloading when the disk cannot hold what is missing. */
async function checkFreeSpace(paths: RepoCachePaths, missing: RemoteFile[], root: string): Promise<void> {
  const needed = missing.reduce((sum, file) => sum + file.size, 0);
  if (needed === 0) return;
  const fs = await statfs(paths.blobs).catch(() => null);
  if (!fs) return;
  const free = fs.bavail * fs.bsize;
  if (needed > free) {
    throw new UserError(
      `not enough disk space in ${root}: this pull needs ${formatBytes(needed)} and ${formatBytes(free)} is free. ` +
        `Free some space (\`finetune cache ls\` / \`finetune cache rm <repo>\`) or choose another cache with --cache-dir.`,
    );
  }
}

/** Maps filesystem failures while writing into the cache to a message naming the cache dir. */
async function guardWrite<T>(root: string, what: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    const code = errnoCode(error);
    if (error instanceof Interrupted || error instanceof UserError || error instanceof RuntimeFailure) throw error;
    if (code === "ENOSPC" || code === "EDQUOT") {
      throw new UserError(
        `the disk holding ${root} is full (while writing ${what}); the partial download was kept so the next pull resumes. ` +
          `Free some space or use --cache-dir on another disk.`,
      );
    }
    if (code === "EACCES" || code === "EPERM" || code === "EROFS" || code === "ENOTDIR" || code === "EEXIST") {
      throw new UserError(
        `cannot write to the cache at ${root} (${code} while writing ${what}). Choose a writable folder with --cache-dir or HF_HUB_CACHE.`,
      );
    }
    throw error;
  }
}

async function hubApiError(response: Response): Promise<Error> {
  const { HubApiError } = await import("@huggingface/hub");
  const error = new HubApiError(response.url, response.status, response.headers.get("x-request-id") ?? undefined, `HTTP ${response.status}`);
  await response.body?.cancel();
  return error;
}
