import { mkdirSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { MAX_GLOB_FILES, resolveDataFiles } from "../../../src/data/resolve-files.js";
import type { PullEvent } from "../../../src/hub/pull.js";
import { startHubServer, type HubServer } from "../../helpers/hub-server.js";
import { tempDir } from "./fixture.js";

const dir = tempDir();
const base = join(dir.path, "recipes");
let hub: HubServer;
let cacheCount = 0;

beforeAll(async () => {
  mkdirSync(join(base, "data", "more"), { recursive: true });
  mkdirSync(join(base, "data", ".hidden"), { recursive: true });
  mkdirSync(join(dir.path, "shared"), { recursive: true });
  for (const name of ["recipes/data/b.jsonl", "recipes/data/a.jsonl", "recipes/data/more/c.jsonl", "recipes/data/notes.md", "recipes/data/.hidden/d.jsonl", "shared/x.csv", "shared/y.csv"]) {
    dir.write(name, '{"text":"t"}\n');
  }
  hub = await startHubServer([
    {
      type: "dataset",
      name: "org/ds",
      commits: [
        {
          files: [
            { path: "all.jsonl", content: '{"text":"hi"}\n' },
            { path: "data/b.parquet", content: "PAR1" },
            { path: "data/a.csv", content: "a\n1\n" },
            { path: "README.md", content: "# ds" },
            { path: "dataset_infos.json", content: "{}" },
          ],
        },
      ],
    },
    dataset("org/sharded", ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet", "data/validation-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"]),
    dataset("org/named", ["train.jsonl", "my_valid_file.csv", "test.jsonl"]),
    dataset("org/folders", ["train/shard_0.csv", "train/shard_1.csv", "eval/x.csv"]),
    dataset("org/onlytest", ["test.jsonl"]),
    dataset("org/carded", ["README.md", "docs/train.jsonl", "mine/a.jsonl", "mine/b.jsonl"], {
      "README.md": "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: mine/*.jsonl\n---\n# carded\n",
    }),
  ]);
});
/** A dataset repo whose files each hold a distinct line (so identical blobs do not merge them), unless given. */
function dataset(name: string, paths: string[], contents: Record<string, string> = {}) {
  return { type: "dataset" as const, name, commits: [{ files: paths.map((path) => ({ path, content: contents[path] ?? `${name} ${path}\n` })) }] };
}

afterAll(async () => {
  await hub.close();
  dir.remove();
});

const params = () => {
  cacheCount += 1;
  return { baseDir: base, env: { HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(dir.path, `cache-${cacheCount}`) } };
};
async function failure(spec: string | string[]): Promise<string> {
  const error: unknown = await resolveDataFiles(spec, params()).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserError);
  return error instanceof Error ? error.message : "";
}

describe("resolveDataFiles: local", () => {
  it("an existing file relative to baseDir, or absolute; entries keep their order", async () => {
    const absolute = join(dir.path, "shared", "y.csv");
    expect(await resolveDataFiles(["data/b.jsonl", absolute, "data/a.jsonl"], params())).toEqual([join(base, "data/b.jsonl"), absolute, join(base, "data/a.jsonl")]);
  });

  it("a glob is matched under baseDir, sorted, hidden folders skipped", async () => {
    expect(await resolveDataFiles("data/*.jsonl", params())).toEqual([join(base, "data/a.jsonl"), join(base, "data/b.jsonl")]);
    expect(await resolveDataFiles("data/**/*.jsonl", params())).toEqual([join(base, "data/a.jsonl"), join(base, "data/b.jsonl"), join(base, "data/more/c.jsonl")]);
    expect(await resolveDataFiles("**/{c,notes}.*", params())).toEqual([join(base, "data/more/c.jsonl"), join(base, "data/notes.md")]);
  });

  it("a glob may climb out of baseDir", async () => {
    expect(await resolveDataFiles("../shared/*.csv", params())).toEqual([join(dir.path, "shared/x.csv"), join(dir.path, "shared/y.csv")]);
  });

  it("a glob without a match names the pattern and the folder", async () => {
    expect(await failure("data/*.parquet")).toBe(
      `no file matches "data/*.parquet" in ${join(base, "data")}; check the pattern and the folder (relative to ${base}).`,
    );
  });

  it("a missing file says no such file, relative to baseDir — even when it looks like org/name", async () => {
    expect(await failure("data/train.jsonl")).toBe(
      `no such file "data/train.jsonl" (relative to ${base}); give a file, a glob like data/*.jsonl, or a hub dataset org/name[/file].`,
    );
    expect(await failure("train.jsonl")).toContain(`no such file "train.jsonl" (relative to ${base})`);
    expect(await failure("./x/y")).toContain('no such file "./x/y"');
    expect(await failure("org/train.csv")).toContain('no such file "org/train.csv"');
  });

  it("a glob over more files than MAX_GLOB_FILES is refused, naming the count; up to it, every file is found", async () => {
    // MAX_GLOB_FILES + 1 empty files in nested folders, walked without recursion.
    const root = join(dir.path, "many");
    for (let folder = 0; folder <= MAX_GLOB_FILES / 100; folder += 1) {
      const sub = join(root, `f${folder}`, "deeper");
      mkdirSync(sub, { recursive: true });
      for (let i = 0; i < 100; i += 1) writeFileSync(join(sub, `${i}.jsonl`), "");
    }
    const total = (MAX_GLOB_FILES / 100 + 1) * 100;
    expect(await failure("../many/**/*.jsonl")).toBe(
      `"../many/**/*.jsonl" matches ${total} files in ${root}, more than the ${MAX_GLOB_FILES} a dataset is sensibly split into; ` +
        "narrow the pattern (e.g. one folder, or *.jsonl without **), or merge the files into fewer, larger ones.",
    );
    expect(await resolveDataFiles("../many/f1*/**/*.jsonl", params())).toHaveLength(100 * 12);
  });

  it("a folder is refused with a glob suggestion", async () => {
    expect(await failure("data")).toContain("data is a folder");
  });
});

describe("resolveDataFiles: hub datasets", () => {
  const inRepo = (files: string[]) => files.map((file) => file.split("/snapshots/")[1]?.split("/").slice(1).join("/"));

  it("org/name pulls the dataset and returns its data files, sorted, metadata skipped (no split names: all are train)", async () => {
    const events: PullEvent[] = [];
    const files = await resolveDataFiles("org/ds", { ...params(), onEvent: (event) => events.push(event) });
    expect(inRepo(files)).toEqual(["all.jsonl", "data/a.csv", "data/b.parquet"]);
    expect(files[0]).toContain("datasets--org--ds");
    expect(realpathSync(files[2] ?? "")).toContain("/blobs/");
    expect(events.filter((event) => event.type === "resolved")).toHaveLength(1); // the dataset card is read quietly
  });

  it("org/name/path fetches only that file", async () => {
    hub.requests.length = 0;
    const files = await resolveDataFiles("org/ds/data/a.csv", params());
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/datasets--org--ds\/snapshots\/[0-9a-f]{40}\/data\/a\.csv$/);
    const downloaded = hub.requests.filter((r) => r.method === "GET" && r.url.includes("/resolve/") && r.range === undefined).map((r) => r.url.split("/").pop());
    expect(downloaded).toEqual(["a.csv"]);
  });

  it("org/name gives the train split, or the validation split, by the Hub's file naming; other splits are not downloaded", async () => {
    hub.requests.length = 0;
    expect(inRepo(await resolveDataFiles("org/sharded", params()))).toEqual(["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]);
    const downloaded = hub.requests.filter((r) => r.method === "GET" && r.url.includes("/resolve/")).map((r) => r.url.split("/").pop());
    expect(downloaded.sort()).toEqual(["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]);
    expect(inRepo(await resolveDataFiles("org/sharded", { ...params(), split: "validation" }))).toEqual(["data/validation-00000-of-00001.parquet"]);
    expect(inRepo(await resolveDataFiles("org/named", params()))).toEqual(["train.jsonl"]);
    expect(inRepo(await resolveDataFiles("org/named", { ...params(), split: "validation" }))).toEqual(["my_valid_file.csv"]);
    expect(inRepo(await resolveDataFiles("org/folders", params()))).toEqual(["train/shard_0.csv", "train/shard_1.csv"]);
    // The dataset card's configs win over file names.
    expect(inRepo(await resolveDataFiles("org/carded", params()))).toEqual(["mine/a.jsonl", "mine/b.jsonl"]);
  });

  it("a missing split is a UserError that names the splits there are and what to do", async () => {
    const message = async (spec: string, split: "train" | "validation") =>
      resolveDataFiles(spec, { ...params(), split }).then(
        () => "no error",
        (error: unknown) => (error instanceof UserError ? error.message : `not a UserError: ${String(error)}`),
      );
    expect(await message("org/onlytest", "train")).toBe("hub dataset org/onlytest has no train split (its data files make the split test); name its files, e.g. org/onlytest/test.jsonl.");
    expect(await message("org/folders", "validation")).toContain("has no validation split (its data files make the splits train, test); use a held-out fraction (data.validation: 0.05) or name a file");
    expect(await message("org/ds", "validation")).toContain("has no validation split (its data files make the split train)");
  });

  it("a missing repo or file is a UserError", async () => {
    await expect(resolveDataFiles("org/nope", params())).rejects.toThrow(UserError);
    await expect(resolveDataFiles("org/ds/missing.jsonl", params())).rejects.toThrow(UserError);
  });
});
