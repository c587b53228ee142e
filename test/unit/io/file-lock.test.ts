import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { acquireLock, LockBusy, readLockOwner, type LockOwner } from "../../../src/io/file-lock.js";
import { processStartTime } from "../../../src/io/process-start.js";

const dir = mkdtempSync(join(tmpdir(), "file-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const lockPath = () => join(dir, `lock-${(n += 1)}`);

describe("acquireLock", () => {
  it("writes pid, host, process start time and time taken; release removes only its own lock", async () => {
    const path = lockPath();
    const release = await acquireLock(path);
    const owner = await readLockOwner(path);
    expect(owner).toMatchObject({ pid: process.pid, host: hostname() });
    expect(owner?.start).toBe(processStartTime(process.pid));
    if (process.platform === "linux") expect(owner?.start).toMatch(/^\d+$/);
    expect(Number.isNaN(Date.parse(owner?.since ?? ""))).toBe(false);
    // Someone took the lock over meanwhile: our release leaves theirs alone.
    writeFileSync(path, JSON.stringify({ pid: 1, host: "other", start: null, since: null, id: "theirs" }));
    await release();
    expect(JSON.parse(readFileSync(path, "utf8"))).toMatchObject({ id: "theirs" });
  });

  it("takes over a lock naming our own pid that this process never took (a previous process with our pid)", async () => {
    const path = lockPath();
    writeFileSync(path, String(process.pid));
    const release = await acquireLock(path, { waitMs: 0 });
    expect((await readLockOwner(path))?.pid).toBe(process.pid);
    await release();
    expect(existsSync(path)).toBe(false);
  });

  it("a lock this process holds is held: a second acquire in the same process waits and is bounded", async () => {
    const path = lockPath();
    const release = await acquireLock(path);
    const waits: LockOwner[] = [];
    const error = await acquireLock(path, { waitMs: 0, onWait: (owner) => waits.push(owner) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockBusy);
    expect((error as LockBusy).owner.pid).toBe(process.pid);
    expect((error as LockBusy).message).toContain(`${path} is held by pid ${process.pid} on host ${hostname()}, since `);
    expect(waits).toHaveLength(1);
    await release();
  });

  it("takes over locks of dead pids, of reused pids (start time differs) and unreadable ones; waits for live owners", async () => {
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
    const cases: Array<[string, boolean]> = [
      [dead, true],
      [JSON.stringify({ pid: Number(dead), host: hostname(), start: "1", since: null }), true],
      [JSON.stringify({ pid: process.ppid, host: hostname(), start: "1", since: null }), process.platform === "linux"],
      ["{not json", true],
      [String(process.ppid), false],
      [JSON.stringify({ pid: process.ppid, host: hostname(), start: processStartTime(process.ppid), since: null }), false],
      // Another machine's process cannot be checked from here.
      [JSON.stringify({ pid: Number(dead), host: "elsewhere", start: "1", since: null }), false],
    ];
    for (const [content, takesOver] of cases) {
      const path = lockPath();
      writeFileSync(path, content);
      const outcome = await acquireLock(path, { waitMs: 0 }).then(
        async (release) => (await release(), "taken"),
        (error: unknown) => (error instanceof LockBusy ? "busy" : String(error)),
      );
      expect([content, outcome]).toEqual([content, takesOver ? "taken" : "busy"]);
    }
  });

  it("bounds the wait by time without progress, restarting the clock while progress changes", async () => {
    const path = lockPath();
    writeFileSync(path, String(process.ppid));
    let polls = 0;
    const started = Date.now();
    const error = await acquireLock(path, { waitMs: 150, pollMs: 20, progress: async () => (polls += 1) < 10 ? polls : 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockBusy);
    // The owner "made progress" on the first 9 polls, so the 150 ms bound started only after them.
    expect(polls).toBeGreaterThanOrEqual(10);
    expect((error as LockBusy).waitedMs).toBeGreaterThanOrEqual(150);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150 + 9 * 20);
  });

  it("removes the locks a process still holds when it exits, whatever the exit path", () => {
    const path = lockPath();
    const module = resolve(import.meta.dirname, "../../../dist/io/file-lock.js");
    const script = `import(${JSON.stringify(module)}).then(async (m) => { await m.acquireLock(${JSON.stringify(path)}); console.log("held"); process.exit(3); });`;
    const child = spawnSync(process.execPath, ["-e", script]);
    expect(child.stdout.toString().trim()).toBe("held");
    expect(child.status).toBe(3);
    expect(existsSync(path)).toBe(false);
  });
});
