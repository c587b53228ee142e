import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { downloadBlob } from "../../../src/hub/download-blob.js";
import { createHubHttp } from "../../../src/hub/http.js";

// A server that answers whatever range is asked for with its next 1000 bytes only (a complete chunked answer, so
// nothing is lost in flight): every attempt makes progress and none finishes the file.
const content = Buffer.alloc(10_000, 3);
const ranges: string[] = [];
const server = createServer((req, res) => {
  ranges.push(req.headers.range ?? "");
  const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? "")?.[1] ?? 0);
  res.writeHead(start > 0 ? 206 : 200);
  res.end(content.subarray(start, start + 1000));
});
const dir = mkdtempSync(join(tmpdir(), "download-blob-"));
let url = "";

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("downloadBlob", () => {
  it("bounds retries in all even when each one makes progress, keeping the partial", async () => {
    const sha = createHash("sha256").update(content).digest("hex");
    const retries: string[] = [];
    const blobPath = join(dir, sha);
    const error = await downloadBlob({
      url: `${url}/file`,
      file: { path: "w.safetensors", size: content.length, blobName: sha, sha256: sha },
      blobPath,
      http: createHubHttp({ endpoint: url }),
      maxRetries: 3,
      onRetry: (info) => retries.push(`${info.attempt}: ${info.reason}`),
      explain: async (response) => new Error(`HTTP ${response.status}`),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(
      "downloading w.safetensors kept failing (4 attempts in all; last: connection closed after 4000 of 10000 bytes); 4000 of 10000 bytes are kept and the next run resumes from there.",
    );
    expect(retries).toEqual([1, 2, 3].map((i) => `${i}: connection closed after ${i * 1000} of 10000 bytes`));
    expect(ranges).toEqual(["", "bytes=1000-", "bytes=2000-", "bytes=3000-"]);
    expect(statSync(`${blobPath}.incomplete`).size).toBe(4000);
  });
});
