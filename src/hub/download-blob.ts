import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rename, rm, stat } from "node:fs/promises";
import { Interrupted, RuntimeFailure } from "../errors.js";
import type { HubHttp } from "./http.js";
import type { RemoteFile } from "./remote.js";

export interface DownloadBlobParams {
  url: string;
  file: RemoteFile;
  blobPath: string;
  http: HubHttp;
  signal?: AbortSignal | undefined;
  /** Consecutive attempts without progress before giving up (each resumes where the last stopped). Default 5. */
  attempts?: number;
  /** Retries of this file in all, even when each made progress, so a flaky link cannot loop forever. Default 20. */
  maxRetries?: number;
  /** No byte for this long (before the answer or between chunks) counts as a stalled connection. Default 30 s. */
  stallMs?: number;
  /** Told before each retry, so the user sees why nothing moves. */
  onRetry?: (info: { attempt: number; reason: string; delayMs: number }) => void;
  onStart?: (resumeFrom: number) => void;
  onBytes?: (bytes: number) => void;
  /** Turns a non-2xx response into an error that explains it. */
  explain: (response: Response) => Promise<Error>;
}

/**
 * Downloads one file into `<blob>.incomplete`, resuming from the bytes already there (HTTP Range), verifies
 * the LFS sha256 or the git blob sha1, then renames it to the blob. A mismatch deletes the partial and fails.
 * Returns the number of bytes fetched over the network.
 */
export async function downloadBlob(params: DownloadBlobParams): Promise<number> {
  const { file } = params;
  const partial = `${params.blobPath}.incomplete`;
  const attempts = params.attempts ?? 5;
  const maxRetries = params.maxRetries ?? 20;
  let offset = await existingSize(partial);
  if (offset > file.size) {
    await rm(partial, { force: true });
    offset = 0;
  }
  params.onStart?.(offset);
  let fetched = 0;
  let failures = 0;
  let retries = 0;
  while (true) {
    if (params.signal?.aborted) throw new Interrupted("interrupted");
    if (offset === file.size) break;
    const progressBefore = offset;
    try {
      offset = await fetchFrom(params, partial, offset, (n) => {
        fetched += n;
        params.onBytes?.(n);
      });
    } catch (error) {
      if (params.signal?.aborted || error instanceof Interrupted) throw new Interrupted("interrupted");
      if (!isTransient(error)) throw error;
      offset = await existingSize(partial);
      failures = offset > progressBefore ? 1 : failures + 1;
      retries += 1;
      const reason = error instanceof Error ? error.message : String(error);
      if (failures >= attempts || retries > maxRetries) {
        const why = failures >= attempts ? `${failures} attempts in a row made no progress` : `${retries} attempts in all`;
        throw new RuntimeFailure(
          `downloading ${file.path} kept failing (${why}; last: ${reason}); ` +
            `${offset} of ${file.size} bytes are kept and the next run resumes from there.`,
        );
      }
      const delayMs = 200 * 2 ** Math.min(failures, 5);
      params.onRetry?.({ attempt: retries, reason, delayMs });
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
  await verify(file, partial);
  await rename(partial, params.blobPath);
  return fetched;
}

class TransientError extends Error {}

function isTransient(error: unknown): boolean {
  return error instanceof TransientError || (error instanceof TypeError && !(error instanceof RuntimeFailure));
}

/** One GET from `offset` to the end; appends to the partial file and returns the new offset. */
async function fetchFrom(params: DownloadBlobParams, partial: string, offset: number, onBytes: (n: number) => void): Promise<number> {
  const stallMs = params.stallMs ?? 30_000;
  const stall = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  // Armed when the answer's head arrives (the hub client bounds the wait for it) and restarted by every chunk:
  // a connection that stays open but sends nothing is cut after stallMs, not undici's 300 s.
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => stall.abort(new TransientError("stalled")), stallMs);
  };
  try {
    const signal = params.signal ? AbortSignal.any([stall.signal, params.signal]) : stall.signal;
    return await fetchRange(params, partial, offset, onBytes, signal, arm);
  } catch (error) {
    if (stall.signal.aborted && !params.signal?.aborted) {
      const got = await existingSize(partial);
      throw new TransientError(`no data for ${Number((stallMs / 1000).toFixed(1))} s after ${got} of ${params.file.size} bytes: the connection stalled`);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function fetchRange(
  params: DownloadBlobParams,
  partial: string,
  offset: number,
  onBytes: (n: number) => void,
  signal: AbortSignal,
  onChunk: () => void,
): Promise<number> {
  const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
  const response = await params.http.fetch(params.url, { headers, redirect: "follow", signal });
  onChunk();
  if (response.status === 416 && offset > 0) {
    // The server says our partial is past the end: it cannot be trusted, start over.
    await response.body?.cancel();
    await rm(partial, { force: true });
    return 0;
  }
  if (!response.ok) throw await params.explain(response);
  if (offset > 0 && response.status !== 206) {
    // Range ignored: the body is the whole file, so restart the partial from zero.
    await rm(partial, { force: true });
    offset = 0;
  }
  if (!response.body) throw new TransientError("empty response body");
  const handle = await open(partial, offset === 0 ? "w" : "a");
  try {
    try {
      for await (const chunk of response.body) {
        onChunk();
        const bytes = chunk as Uint8Array;
        if (offset + bytes.length > params.file.size) {
          throw new RuntimeFailure(`${params.file.path}: the server sent more than the listed ${params.file.size} bytes.`);
        }
        await handle.write(bytes);
        offset += bytes.length;
        onBytes(bytes.length);
      }
    } catch (error) {
      if (error instanceof RuntimeFailure || isWriteError(error)) throw error;
      throw new TransientError(`connection broke after ${offset} bytes`);
    }
    if (offset < params.file.size) throw new TransientError(`connection closed after ${offset} of ${params.file.size} bytes`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return offset;
}

function isWriteError(error: unknown): boolean {
  return typeof error === "object" && error !== null && "syscall" in error;
}

async function verify(file: RemoteFile, partial: string): Promise<void> {
  let hash: Hash;
  let expected: string;
  if (file.sha256) {
    hash = createHash("sha256");
    expected = file.sha256;
  } else {
    // git's blob id: sha1 over "blob <size>\0" and the content.
    hash = createHash("sha1").update(`blob ${file.size}\0`);
    expected = file.gitOid ?? "";
  }
  for await (const chunk of createReadStream(partial)) hash.update(chunk as Buffer);
  const actual = hash.digest("hex");
  if (actual !== expected) {
    await rm(partial, { force: true });
    throw new RuntimeFailure(
      `${file.path}: downloaded bytes do not match the hub's checksum (expected ${expected}, got ${actual}); ` +
        `the partial file was deleted. Run the command again; if it persists, the mirror or proxy is altering files.`,
    );
  }
}

async function existingSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
