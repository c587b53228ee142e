import { execFileSync } from "node:child_process";
import { constants, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { checkOutputPath, checkPathLength, clampText, makeDirs, removeCreated, shortPath, withTimeBound } from "../../../src/io/output-path.js";
import { tempDir } from "../../helpers/run-cli.js";

const tmp = tempDir("finetune-outpath-");
afterAll(() => tmp.cleanup());

async function refused(work: Promise<unknown>): Promise<string> {
  const error = await work.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(UserError);
  return (error as UserError).message;
}

describe("shortPath / clampText: a user's value is never echoed whole", () => {
  it("keeps short paths, cuts long ones to start…end with the length, escapes control characters", () => {
    expect(shortPath("/home/me/runs/a")).toBe("/home/me/runs/a");
    const huge = `/${"a".repeat(25_000_000)}${"b".repeat(25_000_000)}`;
    const shown = shortPath(huge);
    expect(shown).toBe(`/${"a".repeat(59)}…${"b".repeat(40)} (50000001 characters)`);
    expect(shortPath("/runs/a\u001b[2Jb\nc")).toBe("/runs/a\\x1b[2Jb\\x0ac");
    // A cut never leaves half of a surrogate pair.
    const emoji = `${"😀".repeat(100)}`;
    expect(shortPath(emoji)).toMatch(/^(😀)+…(😀)+ \(200 characters\)$/);
    expect(clampText("k".repeat(1000))).toHaveLength(300 + 1 + 100 + " (1000 characters)".length);
  });
});

describe("checkPathLength: refused before the file system sees the path", () => {
  it("a name over 255 bytes, a path over 4096 bytes, and the room a command needs", () => {
    const message = (path: string, params: { reserve?: number; leafReserve?: number } = {}) => {
      try {
        checkPathLength(path, { flag: "--output", ...params });
        return null;
      } catch (error) {
        expect(error).toBeInstanceOf(UserError);
        return (error as UserError).message;
      }
    };
    expect(message(`/tmp/${"n".repeat(255)}`)).toBeNull();
    expect(message(`/tmp/${"n".repeat(256)}/x`)).toContain("is 256 bytes; file systems allow at most 255 per name; choose a shorter --output.");
    // Bytes, not characters: 128 two-byte characters are 256 bytes.
    expect(message(`/tmp/${"é".repeat(128)}`)).toContain("is 256 bytes");
    expect(message(`/tmp/${"n".repeat(240)}`, { leafReserve: 24 })).toContain("(231 here, to leave room for a temp suffix)");
    const deep = `/${Array.from({ length: 41 }, () => "d".repeat(100)).join("/")}`;
    expect(message(deep)).toContain(`is too long: a path may have at most 4096 bytes; choose a shorter --output.`);
    expect(message(deep.slice(0, 4000), { reserve: 128 })).toContain("(less 128 for the files finetune writes inside it)");
    // 50 MB: refused on its length at once, and the message stays short.
    const huge = message(`/${"z".repeat(50_000_000)}`);
    expect(huge).toContain("(50000001 characters) is too long");
    expect(huge?.length).toBeLessThan(300);
  });
});

describe("checkOutputPath: cheap, bounded, leaves nothing behind", () => {
  it("accepts a new nested folder and an existing one without creating anything", async () => {
    const before = readdirSync(tmp.path);
    await checkOutputPath({ path: join(tmp.path, "new", "deeper", "run"), flag: "--output", kind: "directory" });
    expect(readdirSync(tmp.path)).toEqual(before);
    mkdirSync(join(tmp.path, "existing"));
    await checkOutputPath({ path: join(tmp.path, "existing"), flag: "--output", kind: "directory" });
    expect(readdirSync(join(tmp.path, "existing"))).toEqual([]);
  });

  it.each([
    ["/sys/x", /^cannot create --output \/sys\/x: \/sys does not accept new files \((EACCES|EROFS|EPERM)[^)]*\); choose another --output\.$/],
    ["/dev/null/x", /^cannot use --output \/dev\/null\/x \(ENOTDIR: a part of it is a file, not a folder\); choose another --output\.$/],
    ["/proc/finetune-x/y", /^cannot create --output \/proc\/finetune-x\/y: \/proc does not accept new files \((ENOENT|EACCES)\); choose another --output\.$/],
    ["/proc", /^cannot write into --output \/proc \((ENOENT|EACCES)\); choose another --output\.$/],
  ])("refuses %s", async (path, message) => {
    expect(await refused(checkOutputPath({ path, flag: "--output", kind: "directory" }))).toMatch(message);
  });

  it("a file where a folder is needed, and a folder where a file is", async () => {
    const file = join(tmp.path, "a-file");
    writeFileSync(file, "x");
    expect(await refused(checkOutputPath({ path: file, flag: "--output", kind: "directory" }))).toBe(`--output ${file} is a file, not a folder; choose another --output.`);
    expect(await refused(checkOutputPath({ path: join(file, "a", "b"), flag: "--out", kind: "file" }))).toContain(`cannot use --out ${join(file, "a", "b")} (ENOTDIR`);
    expect(await refused(checkOutputPath({ path: tmp.path, flag: "--out", kind: "file" }))).toBe(`--out ${tmp.path} is a folder; give a file name.`);
  });
});

describe("makeDirs: one level at a time, never the /proc spin", () => {
  it("creates missing parents, reports them, and removeCreated takes them back", async () => {
    const target = join(tmp.path, "m1", "m2", "m3");
    const created = await makeDirs({ path: target, flag: "--out" });
    expect(created).toEqual([join(tmp.path, "m1"), join(tmp.path, "m1", "m2"), target]);
    await removeCreated(created);
    expect(existsSync(join(tmp.path, "m1"))).toBe(false);
  });

  it("fails under /proc instead of spinning, and removes what it made before a failure", async () => {
    expect(await refused(makeDirs({ path: "/proc/finetune-x/y/z", flag: "--out" }))).toMatch(/^cannot create --out \/proc\/finetune-x\/y\/z \((ENOENT|EACCES)\); choose another --out\.$/);
    const file = join(tmp.path, "blocker");
    writeFileSync(file, "x");
    expect(await refused(makeDirs({ path: join(file, "a"), flag: "--out" }))).toContain("(ENOTDIR");
  });
});

describe("withTimeBound: a file-system call that never returns still ends the command", () => {
  it("a write open of a FIFO with no reader (a call stuck on the thread pool) fails with 'did not answer'", async () => {
    const fifo = join(tmp.path, "fifo");
    try {
      execFileSync("mkfifo", [fifo]);
    } catch {
      console.log("skipped: mkfifo is not available on this system");
      return;
    }
    const stuck = open(fifo, "w");
    const message = await refused(withTimeBound(fifo, { flag: "--output", timeoutMs: 200 }, () => stuck));
    expect(message).toBe(`--output ${fifo} did not answer within 0.2 s (a hung network or special file system?); choose another --output.`);
    // Free the thread-pool thread: a reader lets the stuck open finish.
    const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    await (await stuck).close();
    await reader.close();
  });
});
