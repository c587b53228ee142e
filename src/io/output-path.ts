import { randomBytes } from "node:crypto";
import { mkdir, open, rm, rmdir, stat } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";
import { errnoCode, UserError } from "../errors.js";

/** Linux limits: a whole path, and one name in it (bytes, not characters). */
export const PATH_MAX = 4096;
export const NAME_MAX = 255;
/** How long the checks may wait for the file system before saying it does not answer. */
export const OUTPUT_CHECK_TIMEOUT_MS = 10_000;

/**
 * A user-given path as messages show it: whole when short, else its first 60 and last 40 characters with its
 * length, so a 50 MB value never fills a terminal or a log.
 */
export function shortPath(path: string): string {
  return clampText(path, 60, 40);
}

/**
 * Any long text in a message (a value, a key, a problem line) cut in the middle, keeping its start and end.
 * Control characters are escaped so a value cannot move the cursor or forge lines.
 */
export function clampText(text: string, head = 300, tail = 100): string {
  const shown = text.length <= head + tail + 20 ? text : `${cut(text.slice(0, head), "end")}…${cut(text.slice(-tail), "start")} (${text.length} characters)`;
  return shown.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** Drops half of a surrogate pair left at the cut. */
function cut(text: string, side: "start" | "end"): string {
  if (side === "end") return /[\ud800-\udbff]$/.test(text) ? text.slice(0, -1) : text;
  return /^[\udc00-\udfff]/.test(text) ? text.slice(1) : text;
}

export interface OutputPathParams {
  /** The path as given (resolved against the working directory). */
  path: string;
  /** The flag or key that named it, for the advice: "--output", "--out", "--cache-dir". */
  flag: string;
  /** "directory": the path is a folder to write into (existing or not); "file": a file whose folder is written into. */
  kind: "directory" | "file";
  /** Bytes the command adds below the path (file names inside a run folder, a temp suffix); counted against PATH_MAX. */
  reserve?: number;
  /** Bytes added to the last name (a temp sibling's `.tmp-<pid>-<hex>`); counted against NAME_MAX. */
  leafReserve?: number;
  timeoutMs?: number;
}

/**
 * Checks, before any heavy work, that an output path can be written: its length first without touching the file
 * system, then (time-bounded) that nothing on the way is a file and that the folder that will hold it accepts a
 * new file. Creates nothing that stays: the probe file is removed again.
 */
export async function checkOutputPath(params: OutputPathParams): Promise<void> {
  const path = resolve(params.path);
  checkPathLength(path, params);
  await withTimeBound(path, params, async () => {
    const info = await stat(path).catch((error: unknown) => missingOr(error, path, params));
    if (info && params.kind === "directory" && !info.isDirectory()) throw new UserError(`${params.flag} ${shortPath(path)} is a file, not a folder; choose another ${params.flag}.`);
    if (info && params.kind === "file" && info.isDirectory()) throw new UserError(`${params.flag} ${shortPath(path)} is a folder; give a file name.`);
    const holder = info && params.kind === "directory" ? path : await nearestExisting(dirname(path), params);
    await probeWrite(holder, path, params);
  });
}

/**
 * Creates a folder and its missing parents one level at a time (time-bounded); returns the folders it created,
 * outermost first. Not `mkdir({ recursive: true })`: under /proc that spins forever on a thread-pool thread
 * instead of failing, and the process can then not even be interrupted.
 */
export async function makeDirs(params: { path: string; flag: string; timeoutMs?: number }): Promise<string[]> {
  const path = resolve(params.path);
  checkPathLength(path, params);
  return withTimeBound(path, params, async () => {
    const missing: string[] = [];
    let current = path;
    while (!(await stat(current).then(() => true, (error: unknown) => (missingOr(error, current, params), false)))) {
      missing.unshift(current);
      const parent = dirname(current);
      if (parent === current) break;
      current = parent;
    }
    const created: string[] = [];
    try {
      for (const dir of missing) {
        await mkdir(dir);
        created.push(dir);
      }
    } catch (error) {
      await removeCreated(created);
      throw refusal(error, path, params, "create");
    }
    return created;
  });
}

/** Removes folders makeDirs created, innermost first, as long as they are still empty. */
export async function removeCreated(created: string[]): Promise<void> {
  for (const dir of [...created].reverse()) await rmdir(dir).catch(() => undefined);
}

/** Length limits, checked before the file system sees the path (a 50 MB path is refused here, cheaply). */
export function checkPathLength(path: string, params: { flag: string; reserve?: number; leafReserve?: number }): void {
  const reserve = params.reserve ?? 0;
  // Byte lengths are needed, but a huge path is refused on its character count before it is ever encoded.
  if (path.length + reserve > PATH_MAX || Buffer.byteLength(path) + reserve > PATH_MAX) {
    const room = reserve > 0 ? ` (less ${reserve} for the files finetune writes inside it)` : "";
    throw new UserError(`${params.flag} ${shortPath(path)} is too long: a path may have at most ${PATH_MAX} bytes${room}; choose a shorter ${params.flag}.`);
  }
  const leafReserve = params.leafReserve ?? 0;
  const names = path.split(sep);
  names.forEach((name, index) => {
    const limit = NAME_MAX - (index === names.length - 1 ? leafReserve : 0);
    const bytes = Buffer.byteLength(name);
    if (bytes > limit) {
      throw new UserError(
        `${params.flag} ${shortPath(path)}: the name ${JSON.stringify(shortPath(name))} is ${bytes} bytes; file systems allow at most ${NAME_MAX} per name` +
          `${limit < NAME_MAX ? ` (${limit} here, to leave room for a temp suffix)` : ""}; choose a shorter ${params.flag}.`,
      );
    }
  });
}

/** The closest folder that exists above a path that does not; a file on the way is a usage error. */
async function nearestExisting(start: string, params: OutputPathParams): Promise<string> {
  let current = start;
  for (;;) {
    const info = await stat(current).catch((error: unknown) => missingOr(error, current, params));
    if (info) {
      if (!info.isDirectory()) throw new UserError(`${params.flag} ${shortPath(resolve(params.path))}: ${shortPath(current)} is a file, not a folder; choose another ${params.flag}.`);
      return current;
    }
    const parent = dirname(current);
    if (parent === current) return current;
    current = parent;
  }
}

/** Creates and removes an empty file in `dir`: the one test every file system answers truthfully (root ignores modes). */
async function probeWrite(dir: string, path: string, params: OutputPathParams): Promise<void> {
  const probe = `${dir}${dir.endsWith(sep) ? "" : sep}.finetune-probe-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    const handle = await open(probe, "wx");
    await handle.close();
  } catch (error) {
    throw dir === path ? refusal(error, path, params, "write into") : refusal(error, path, params, "create", `${shortPath(dir)} does not accept new files`);
  }
  await rm(probe, { force: true });
}

/** null for a path that does not exist yet; a usage error for one that cannot exist (a file on the way, too long). */
function missingOr(error: unknown, path: string, params: { flag: string; path: string }): null {
  if (errnoCode(error) === "ENOENT") return null;
  throw refusal(error, path, params, "use");
}

const USER_CODES = ["EACCES", "EPERM", "EROFS", "ENOTDIR", "ENAMETOOLONG", "EEXIST", "ENOENT", "ENOSPC", "EDQUOT", "ELOOP", "EINVAL", "EISDIR", "EBUSY"];

function refusal(error: unknown, path: string, params: { flag: string }, verb: string, why?: string): unknown {
  const code = errnoCode(error);
  if (code === undefined || !USER_CODES.includes(code)) return error;
  const hint = code === "ENOTDIR" ? ": a part of it is a file, not a folder" : code === "ENOSPC" || code === "EDQUOT" ? ": the disk is full" : code === "EROFS" ? ": read-only file system" : "";
  return new UserError(`cannot ${verb} ${params.flag} ${shortPath(path)}${why ? `: ${why}` : ""} (${code}${hint}); choose another ${params.flag}.`);
}

/**
 * Races file-system work against a timer: a call stuck in the kernel (a hung network mount, a special file
 * system) occupies a thread-pool thread that nothing can cancel, but the command still ends with a clear answer.
 */
export async function withTimeBound<T>(path: string, params: { flag: string; timeoutMs?: number }, work: () => Promise<T>): Promise<T> {
  const ms = params.timeoutMs ?? OUTPUT_CHECK_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UserError(`${params.flag} ${shortPath(path)} did not answer within ${ms / 1000} s (a hung network or special file system?); choose another ${params.flag}.`)), ms);
  });
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
