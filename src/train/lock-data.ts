import { relative } from "node:path";
import { UserError } from "../errors.js";
import type { DataFile } from "../data/prepare.js";
import type { RunLock } from "./lock.js";

/**
 * Checks that the data files a re-run actually read (after resolving the lock's recipe: globs, hub datasets) are
 * exactly the files the lock pins, with the same hashes and roles. Checking the lock's list alone is not enough: a
 * glob in the recipe can match a file added since, and the recipe, not the list, decides what is trained on.
 */
export function checkDataAgainstLock(params: { lock: RunLock; lockPath: string; runDir: string; files: DataFile[] }): void {
  const { lock, lockPath } = params;
  const key = (f: { path: string; role: string }) => `${f.role}:${f.path}`;
  const pinned = new Map(lock.data.map((f) => [key(f), f]));
  const read = params.files.map((f) => ({ path: f.pinned ?? relative(params.runDir, f.path), role: f.role, sha256: f.sha256 }));
  const problems: string[] = [];
  for (const file of read) {
    const expected = pinned.get(key(file));
    if (!expected) problems.push(`${file.path} (${file.role}) is read by the recipe but not pinned in the lock`);
    else if (expected.sha256 !== file.sha256) problems.push(`${file.path} has sha256 ${file.sha256.slice(0, 12)}…, the lock pins ${expected.sha256.slice(0, 12)}…`);
  }
  const readKeys = new Set(read.map(key));
  for (const file of lock.data) if (!readKeys.has(key(file))) problems.push(`${file.path} (${file.role}) is pinned in the lock but the recipe no longer reads it`);
  if (problems.length > 0) {
    throw new UserError(`the data the locked recipe reads is not the data the run trained on (${lockPath}):\n  ${problems.join("\n  ")}\nreproduce refuses to train on different data; restore the files as they were, or train a new run.`);
  }
}
