import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { processStartTicks } from "../../../src/io/process-start.js";
import { acquireRunOwner, readOwner, RUN_OWNER_FILE } from "../../../src/train/run-owner.js";
import { tempDir } from "../../helpers/run-cli.js";

const tmp = tempDir("finetune-owner-");
afterAll(() => tmp.cleanup());
let dirs = 0;
const lockIn = () => {
  const dir = join(tmp.path, `run-${(dirs += 1)}`);
  mkdirSync(dir, { recursive: true });
  return join(dir, RUN_OWNER_FILE);
};

/** A pid that certainly belongs to no process: one that just exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(child.stdout);
}

const lockText = (fields: Record<string, unknown>) =>
  JSON.stringify({ pid: 1, host: hostname(), started_at: "2026-01-01T00:00:00.000Z", start_ticks: null, command: "finetune train", nonce: "0123456789abcdef", ...fields });

describe("run lock (one training process per run directory)", () => {
  it("records pid, host and start time, refuses a second owner naming the first, and releases only its own lock", async () => {
    const path = lockIn();
    const release = await acquireRunOwner({ path, command: "finetune train" });
    const owner = await readOwner(path);
    expect(owner).toMatchObject({ pid: process.pid, host: hostname(), command: "finetune train", start_ticks: processStartTicks(process.pid) });
    expect(Date.parse(owner?.started_at ?? "")).not.toBeNaN();

    // This process is alive, so a second claim (simulated with another nonce being impossible: same pid) is refused.
    writeFileSync(path, lockText({ pid: process.ppid, start_ticks: processStartTicks(process.ppid), started_at: "2026-02-03T04:05:06.000Z" }));
    const second = acquireRunOwner({ path, command: "finetune train" });
    await expect(second).rejects.toBeInstanceOf(UserError);
    await expect(second).rejects.toThrow(`is in use by another run: finetune train, pid ${process.ppid}, started 2026-02-03T04:05:06.000Z`);
    // Our release must not remove the lock that replaced ours.
    await release();
    expect(existsSync(path)).toBe(true);
    expect((await readOwner(path))?.pid).toBe(process.ppid);
  });

  it.each([
    ["a dead process", () => lockText({ pid: deadPid() })],
    ["a reused pid (alive, but started at another time)", () => lockText({ pid: process.ppid, start_ticks: (processStartTicks(process.ppid) ?? 0) + 12345 })],
    ["a file that is not a lock", () => "garbage {"],
  ])("takes over the stale lock of %s, and leaves no temp files", async (_name, text) => {
    if (processStartTicks(process.pid) === null) console.warn("no /proc here: the reused-pid case is decided by the pid alone");
    const path = lockIn();
    writeFileSync(path, text());
    const release = await acquireRunOwner({ path, command: "finetune train" });
    expect((await readOwner(path))?.pid).toBe(process.pid);
    await release();
    expect(readdirSync(join(path, ".."))).toEqual([]);
  });

  it("refuses a lock from another host (its process cannot be checked) and says how to clear it", async () => {
    const path = lockIn();
    writeFileSync(path, lockText({ pid: deadPid(), host: "other-machine" }));
    await expect(acquireRunOwner({ path, command: "finetune train" })).rejects.toThrow(/pid \d+ on other-machine, started .*; if that process no longer runs, delete .*\.finetune-run\.lock/);
    expect(readFileSync(path, "utf8")).toContain("other-machine");
  });

  it("of two processes racing for a stale lock exactly one wins", async () => {
    const path = lockIn();
    writeFileSync(path, lockText({ pid: deadPid() }));
    // Two claimants in this process: same pid, so the loser sees a live owner and is refused.
    const results = await Promise.allSettled([acquireRunOwner({ path, command: "a" }), acquireRunOwner({ path, command: "b" })]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(results.filter((r) => r.status === "rejected")).toHaveLength(1);
    const owner = await readOwner(path);
    expect(owner?.pid).toBe(process.pid);
    for (const r of results) if (r.status === "fulfilled") await r.value();
    expect(existsSync(path)).toBe(false);
  });
});
