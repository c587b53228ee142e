import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm, symlink, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";

/** A sibling temp name, unique per call, so concurrent writers never share one. */
export function tempSibling(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
}

/** Writes a file whole or not at all: temp file in the same directory, then rename over the target. */
export function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  return writeStreamAtomic(path, (handle) => handle.writeFile(data));
}

/** Creates or replaces a symlink atomically. */
export async function symlinkAtomic(target: string, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = tempSibling(path);
  try {
    await symlink(target, temp);
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** Streams a file into a temp sibling and renames it into place; a failure leaves nothing behind. */
export async function writeStreamAtomic(path: string, write: (handle: FileHandle) => Promise<void>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = tempSibling(path);
  try {
    const handle = await open(temp, "w");
    try {
      await write(handle);
      // Flushed before the rename, so a power loss cannot leave a renamed but empty file.
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw withErrorPath(error, path);
  }
}

/**
 * A FileHandle's write errors (ENOSPC, EIO, …) carry no path; the file being written is named for the message the
 * user sees (src/io/write-failure.ts needs it).
 */
export function withErrorPath(error: unknown, path: string): unknown {
  if (typeof error === "object" && error !== null && "code" in error && !("path" in error)) Object.assign(error, { path });
  return error;
}

/**
 * Writes all of `bytes`, in pieces below Node's 2 GiB limit per write. A short write is retried from where it
 * stopped; a write that takes no bytes at all means the disk took nothing, so it is reported as ENOSPC (naming
 * `path`) instead of looping forever.
 */
export async function writeAll(handle: FileHandle, bytes: Uint8Array, path?: string): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
    if (bytesWritten <= 0) {
      throw Object.assign(new Error(`ENOSPC: wrote 0 of ${bytes.byteLength - done} remaining bytes`), { code: "ENOSPC", path });
    }
    done += bytesWritten;
  }
}
