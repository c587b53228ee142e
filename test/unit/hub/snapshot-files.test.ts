import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { listSnapshot, readRef } from "../../../src/hub/snapshot-files.js";
import { tempDir } from "../../helpers/run-cli.js";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe("listSnapshot and readRef", () => {
  it("lists files recursively; an absent folder has none; any other failure is an error naming the path", async () => {
    const dir = join(tmp.path, "snap");
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "config.json"), "{}");
    writeFileSync(join(dir, "sub", "b.txt"), "");
    symlinkSync("config.json", join(dir, "link.json"));
    expect(await listSnapshot(dir)).toEqual(["config.json", "link.json", "sub/b.txt"]);
    expect(await listSnapshot(join(tmp.path, "absent"))).toEqual([]);
    const file = join(tmp.path, "a-file");
    writeFileSync(file, "");
    await expect(listSnapshot(file)).rejects.toThrow(UserError);
    await expect(listSnapshot(file)).rejects.toThrow(`cannot list the files of ${file} (ENOTDIR)`);
  });

  it("reads a ref; null when there is none", async () => {
    const refs = join(tmp.path, "refs");
    mkdirSync(join(refs, "dir-ref"), { recursive: true });
    writeFileSync(join(refs, "main"), "abc123\n");
    const paths = { repo: tmp.path, blobs: join(tmp.path, "blobs"), snapshots: join(tmp.path, "snapshots"), refs };
    expect(await readRef(paths, "main")).toBe("abc123");
    expect(await readRef(paths, "v2")).toBeNull();
    // a directory where the ref file should be: EISDIR reads as "no such ref" (a ref name with a slash nests folders)
    expect(await readRef(paths, "dir-ref")).toBeNull();
  });
});
