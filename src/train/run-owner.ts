import { randomBytes } from "node:crypto";
import { link, readFile, rename, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { z } from "zod";
import { processStartTicks } from "../io/process-start.js";
import { errnoCode, RuntimeFailure, UserError } from "../errors.js";
import { shortPath } from "../io/output-path.js";
import { tempSibling } from "../io/atomic.js";

/** The file in a run directory that says which process is training in it right now. */
export const RUN_OWNER_FILE = ".finetune-run.lock";

const ownerSchema = z.object({
  pid: z.number().int().positive(),
  host: z.string(),
  started_at: z.string(),
  /** The process's start time in clock ticks since boot (Linux), which tells a reused pid from the owner. */
  start_ticks: z.number().nullable(),
  command: z.string(),
  /** Unique per lock, so a takeover and a release can tell this lock from a newer one. */
  nonce: z.string(),
});
export type RunOwner = z.infer<typeof ownerSchema>;

export interface AcquireRunOwnerParams {
  /** The lock file (inside the run directory). */
  path: string;
  /** What the owner runs, for the message another process prints ("finetune train"). */
  command: string;
  /** For tests: this machine's name. */
  host?: string;
}

/**
 * Takes the run directory for this process, for the whole run (the blob lock's pattern: a complete file hard-linked
 * into place, so it never exists half-written). A live owner makes this a usage error naming it; a lock whose
 * process is gone (crash, kill -9, a reboot, a reused pid) is taken over. Returns the release function, which removes
 * the lock only while it is still this one.
 */
export async function acquireRunOwner(params: AcquireRunOwnerParams): Promise<() => Promise<void>> {
  const host = params.host ?? hostname();
  const me: RunOwner = {
    pid: process.pid,
    host,
    started_at: new Date().toISOString(),
    start_ticks: processStartTicks(process.pid),
    command: params.command,
    nonce: randomBytes(8).toString("hex"),
  };
  const text = `${JSON.stringify(me, null, 2)}\n`;
  // A few rounds are enough: each round either takes the lock, meets a live owner, or clears one stale lock.
  for (let round = 0; round < 5; round += 1) {
    const temp = tempSibling(params.path);
    await writeFile(temp, text);
    try {
      await link(temp, params.path);
      return async () => {
        const now = await readOwner(params.path);
        if (now?.nonce === me.nonce) await rm(params.path, { force: true });
      };
    } catch (error) {
      if (errnoCode(error) !== "EEXIST") throw error;
    } finally {
      await rm(temp, { force: true });
    }
    const seen = await readFile(params.path, "utf8").catch(() => null);
    if (seen === null) continue;
    const owner = parseOwner(seen);
    if (owner !== null && ownerAlive(owner, host)) {
      const where = owner.host === host ? "" : ` on ${owner.host}`;
      throw new UserError(
        `${shortPath(dirname(params.path))} is in use by another run: ${owner.command}, pid ${owner.pid}${where}, started ${owner.started_at}. ` +
          `Wait for it to finish or stop it (Ctrl-C in its terminal, or kill -INT ${owner.pid}${where}), or use --output for a separate run` +
          `${owner.host === host ? "" : `; if that process no longer runs, delete ${params.path}`}.`,
      );
    }
    await breakStaleLock(params.path, seen);
  }
  throw new RuntimeFailure(`could not take the run lock ${params.path}: other processes keep replacing it; try again.`);
}

/**
 * Removes a lock judged stale, without ever removing a newer one: the lock is renamed aside (atomic, only one
 * process wins) and deleted only if it is still the stale one that was judged; a newer lock moved aside by mistake
 * is linked back.
 */
async function breakStaleLock(path: string, judged: string): Promise<void> {
  const aside = tempSibling(path);
  const moved = await rename(path, aside).then(() => true, () => false);
  if (!moved) return;
  const text = await readFile(aside, "utf8").catch(() => null);
  if (text !== judged) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}

/** The lock's owner, or null when the file is missing or not a lock (a lock is never partial, so that one is stale). */
export async function readOwner(path: string): Promise<RunOwner | null> {
  const text = await readFile(path, "utf8").catch(() => null);
  return text === null ? null : parseOwner(text);
}

function parseOwner(text: string): RunOwner | null {
  try {
    const parsed = ownerSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Whether the owner may still be running. Another host cannot be checked, so it counts as running. */
function ownerAlive(owner: RunOwner, host: string): boolean {
  if (owner.host !== host) return true;
  const ticks = processStartTicks(owner.pid);
  if (owner.pid === process.pid) return ticks !== null && ticks === owner.start_ticks;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if (errnoCode(error) !== "EPERM") return false;
  }
  // Alive, but possibly a different process that was given the same pid later.
  return ticks === null || owner.start_ticks === null || ticks === owner.start_ticks;
}
