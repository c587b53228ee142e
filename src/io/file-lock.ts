import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { link, readFile, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { errnoCode, Interrupted, UserError } from "../errors.js";
import { tempSibling } from "./atomic.js";
import { processStartTime } from "./process-start.js";
import { sleep } from "./sleep.js";

/** Who holds a lock, as written in the lock file. Old lock files hold only a pid (host and start time null). */
export interface LockOwner {
  pid: number;
  host: string | null;
  /** The owner's process start time (Linux: clock ticks since boot), telling a reused pid from the real owner. */
  start: string | null;
  /** When the lock was taken (ISO 8601). */
  since: string | null;
}

export interface AcquireLockOptions {
  signal?: AbortSignal | undefined;
  pollMs?: number;
  /** How long to wait for a live owner: undefined waits for ever, 0 does not wait. */
  waitMs?: number | undefined;
  /** Restarts the wait while its value changes between polls (e.g. the size of the file the owner writes). */
  progress?: (() => Promise<unknown>) | undefined;
  /** Told once, when the lock is held by someone else and we start waiting. */
  onWait?: ((owner: LockOwner) => void) | undefined;
}

/** The lock stayed held by a live process for longer than the caller was willing to wait. */
export class LockBusy extends UserError {
  constructor(
    readonly path: string,
    readonly owner: LockOwner,
    readonly waitedMs: number,
  ) {
    super(`${path} is held by ${describeOwner(owner)}${waitedMs > 0 ? `; waited ${Math.round(waitedMs / 1000)} s` : ""}`);
  }
}

/** Locks this process holds, by path → the id written in them; removed on exit whatever the exit path. */
const held = new Map<string, string>();
let exitHookInstalled = false;

/**
 * An exclusive lock between processes: a `<path>` file, created atomically, naming its owner (pid, host,
 * process start time). A lock whose owner is gone (crash, SIGKILL) or whose pid now belongs to another process
 * is taken over. Waiting is reported through `onWait` and bounded by `waitMs`. Returns the release function.
 */
export async function acquireLock(path: string, options: AcquireLockOptions = {}): Promise<() => Promise<void>> {
  const pollMs = options.pollMs ?? 200;
  const id = randomBytes(8).toString("hex");
  const me: LockOwner & { id: string } = { pid: process.pid, host: hostname(), start: processStartTime(process.pid), since: new Date().toISOString(), id };
  let waitStarted: number | null = null;
  let lastProgress: unknown;
  while (true) {
    if (options.signal?.aborted) throw new Interrupted("interrupted");
    // The owner is written to a private file first and hard-linked into place, so the lock never exists empty.
    const temp = tempSibling(path);
    await writeFile(temp, `${JSON.stringify(me)}\n`);
    try {
      await link(temp, path);
      held.set(path, id);
      installExitHook();
      return async () => {
        held.delete(path);
        // Release only a lock that is still ours (a stale-lock takeover may have replaced it).
        if (ownerId(await readFile(path, "utf8").catch(() => null)) === id) await rm(path, { force: true });
      };
    } catch (error) {
      if (errnoCode(error) !== "EEXIST") throw error;
    } finally {
      await rm(temp, { force: true });
    }
    const text = await readFile(path, "utf8").catch(() => null);
    // Gone between our attempt and the read: the owner just released it, so try again.
    if (text === null) continue;
    const owner = parseOwner(text);
    if (isStale(owner, path, text)) {
      // Re-read right before removing, so a lock freshly taken by another waiter is not removed by mistake.
      if ((await readFile(path, "utf8").catch(() => null)) === text) await rm(path, { force: true });
      continue;
    }
    const now = Date.now();
    const progress = options.progress ? await options.progress().catch(() => null) : undefined;
    if (waitStarted === null) {
      waitStarted = now;
      lastProgress = progress;
      options.onWait?.(owner);
    } else if (progress !== lastProgress) {
      waitStarted = now;
      lastProgress = progress;
    }
    if (options.waitMs !== undefined && now - waitStarted >= options.waitMs) throw new LockBusy(path, owner, now - waitStarted);
    await sleep(pollMs, options.signal);
  }
}

/** The owner named in a lock file, or null when there is no lock. */
export async function readLockOwner(path: string): Promise<LockOwner | null> {
  const text = await readFile(path, "utf8").catch(() => null);
  return text === null ? null : parseOwner(text);
}

/** "pid 4242 on host gpu1, started 2026-12-03T09:30:00.000Z": for messages about a held lock. */
export function describeOwner(owner: LockOwner): string {
  return `pid ${owner.pid}${owner.host ? ` on host ${owner.host}` : ""}${owner.since ? `, since ${owner.since}` : ""}`;
}

function parseOwner(text: string): LockOwner {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return { pid: Number(trimmed), host: null, start: null, since: null };
  try {
    const value = JSON.parse(trimmed) as Record<string, unknown>;
    return {
      pid: typeof value.pid === "number" ? value.pid : -1,
      host: typeof value.host === "string" ? value.host : null,
      start: typeof value.start === "string" ? value.start : null,
      since: typeof value.since === "string" ? value.since : null,
    };
  } catch {
    // Unreadable (a torn write by a foreign tool): nobody can own it.
    return { pid: -1, host: null, start: null, since: null };
  }
}

function ownerId(text: string | null): string | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    return typeof value.id === "string" ? value.id : null;
  } catch {
    return null;
  }
}

/** A lock is stale when its owner provably no longer runs: no such pid, or the pid now belongs to another process. */
function isStale(owner: LockOwner, path: string, text: string): boolean {
  if (!Number.isInteger(owner.pid) || owner.pid <= 0) return true;
  // Another machine (a shared filesystem): its processes cannot be checked from here, so it is never stale.
  if (owner.host !== null && owner.host !== hostname()) return false;
  if (owner.pid === process.pid) {
    // Our pid: ours only if this process took it (a previous process with the same pid left it behind).
    return held.get(path) !== ownerId(text);
  }
  if (!isAlive(owner.pid)) return true;
  const start = processStartTime(owner.pid);
  return owner.start !== null && start !== null && start !== owner.start;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === "EPERM";
  }
}

/** Removes, on any exit (error, signal handled by index.ts, process.exit), the locks this process still holds. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const [path, id] of held) {
      try {
        if (ownerId(readFileSync(path, "utf8")) === id) rmSync(path, { force: true });
      } catch {
        // Already gone.
      }
    }
  });
}
