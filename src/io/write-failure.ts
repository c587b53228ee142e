import { statfsSync } from "node:fs";
import { dirname } from "node:path";
import { errnoCode, UserError } from "../errors.js";

/** Filesystem codes that mean "this disk or folder will not take the write": the user fixes them, not us. */
const DISK_FULL = new Set(["ENOSPC", "EDQUOT"]);
const NOT_WRITABLE = new Set(["EROFS", "EACCES", "EPERM"]);

/** The path a system error names (fs errors carry it), or undefined. */
export function errnoPath(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "path" in error && typeof error.path === "string") return error.path;
  return undefined;
}

/** Free bytes on the filesystem holding `path`, when statfs answers cheaply; undefined otherwise. */
function freeBytes(path: string): number | undefined {
  // The file itself may be gone (a removed partial): the nearest existing ancestor sits on the same disk.
  let candidate = path;
  for (let depth = 0; depth < 64; depth += 1) {
    try {
      const stats = statfsSync(candidate);
      return stats.bavail * stats.bsize;
    } catch {
      const parent = dirname(candidate);
      if (parent === candidate) return undefined;
      candidate = parent;
    }
  }
  return undefined;
}

export interface WriteFailureParams {
  error: unknown;
  /** What was being written ("checkpoint step 40", "merged model"), for the message. */
  what?: string;
  /** The path written, when the error does not carry it. */
  path?: string;
  /** Bytes the write needed, when known. */
  bytesNeeded?: number;
}

/**
 * Turns a disk-full / read-only / permission error while writing into a UserError naming the path, what was being
 * written, the bytes needed and free (when known) and what to do; anything else is returned undefined so the caller
 * rethrows it unchanged.
 */
export function writeFailure(params: WriteFailureParams): UserError | undefined {
  const code = errnoCode(params.error);
  if (code === undefined) return undefined;
  const path = params.path ?? errnoPath(params.error);
  if (path === undefined) return undefined;
  const what = params.what === undefined ? "" : ` (writing ${params.what})`;
  if (DISK_FULL.has(code)) {
    const free = freeBytes(path);
    const need = params.bytesNeeded === undefined ? "" : `; it needs about ${params.bytesNeeded} bytes`;
    const has = free === undefined ? "" : `, ${free} bytes free`;
    return new UserError(
      `the disk holding ${path} is full (${code})${what}${need}${has}. Free some space, or choose a folder on another disk with --output / --out.`,
    );
  }
  if (NOT_WRITABLE.has(code)) {
    return new UserError(
      `cannot write ${path} (${code}${code === "EROFS" ? ": read-only filesystem" : ": permission denied"})${what}. Choose a writable folder with --output / --out.`,
    );
  }
  return undefined;
}
