import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

/** A file in a fake repo. `lfs` files are listed with an LFS sha256, like weights on the real hub. */
export interface FakeFile {
  path: string;
  content: Buffer | string;
  lfs?: boolean;
}

export interface FakeRepo {
  type?: "model" | "dataset";
  name: string;
  /** Commits by sha; the first is `main` unless `branches` says otherwise. */
  commits: Array<{ sha?: string; files: FakeFile[] }>;
  branches?: Record<string, number>;
  /** Needs `Authorization: Bearer <token>`; 401 (private) or 403 GatedRepo (gated) otherwise. */
  access?: { token: string; kind: "private" | "gated" };
}

/** Faults the tests switch on; each counts down `times` (default 1). */
export interface Faults {
  /** Send only `bytes` of the body, then destroy the socket. */
  dropAfter?: { path: string; bytes: number; times?: number };
  /**
   * Send `bytes`, then hold the connection open without sending more (kill-mid-download and stall tests).
   * `resumedBytes` (default `bytes`) is what a Range request gets before it stalls too.
   */
  stallAfter?: { path: string; bytes: number; resumedBytes?: number; times?: number };
  /** Answer 500 to requests whose URL contains this. */
  fail500?: { urlIncludes: string; times?: number };
  /** Serve bytes that differ from the listed checksum. */
  corrupt?: { path: string };
  /** Answer the revision endpoint with broken JSON. */
  malformedJson?: boolean;
  /** Extra entries in the tree listing (e.g. hostile paths). */
  extraTreeEntries?: Array<Record<string, unknown>>;
  /** A hub or proxy that quotes the request's Authorization header in its error body (HTTP `status`). */
  echoAuthorization?: { urlIncludes: string; status: number; times?: number };
  /** Tree pages' `Link: rel="next"` point at this origin (another server) instead of this one. */
  nextPageOrigin?: string;
  /** File downloads answer 302 to the same path on this origin (a CDN), as the hub does for LFS files. */
  redirectFilesTo?: string;
  /** Answer metadata calls whose URL contains this with a JSON body of `bytes`; `declared` sends Content-Length. */
  oversizeJson?: { urlIncludes: string; bytes: number; declared?: boolean };
  /** A renamed repo: requests naming `from` get a relative 307 to the same URL naming `to`, as the hub does. */
  renamed?: { from: string; to: string };
  /** Accept requests whose URL contains this and never answer (`times` of them). */
  hangHead?: { urlIncludes: string; times?: number };
  /** Answer metadata calls whose URL contains this with the start of a JSON body, then send nothing more. */
  stallJson?: { urlIncludes: string };
  /** Answer `status` with `Retry-After: <value>` to requests whose URL contains this. */
  retryAfter?: { urlIncludes: string; status: number; value: string; times?: number };
}

export interface RecordedRequest {
  method: string;
  url: string;
  authorization: string | undefined;
  range: string | undefined;
  /** Body bytes sent in the answer. */
  bytesSent: number;
}

export interface HubServer {
  url: string;
  requests: RecordedRequest[];
  faults: Faults;
  /** Commit shas of a repo, in the order given. */
  shas(name: string): string[];
  close(): Promise<void>;
}

interface StoredFile {
  path: string;
  content: Buffer;
  lfs: boolean;
  oid: string;
  sha256: string;
}

interface StoredRepo {
  repo: FakeRepo;
  commits: Map<string, StoredFile[]>;
  shaList: string[];
  branches: Map<string, string>;
}

export const gitOid = (content: Buffer): string =>
  createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
export const sha256 = (content: Buffer): string => createHash("sha256").update(content).digest("hex");

/** A real HTTP server on 127.0.0.1 that answers the hub endpoints listed in FORMATS.md. */
export async function startHubServer(repos: FakeRepo[], options: { treePageSize?: number } = {}): Promise<HubServer> {
  const stored = new Map<string, StoredRepo>();
  for (const repo of repos) {
    const commits = new Map<string, StoredFile[]>();
    const shaList: string[] = [];
    for (const commit of repo.commits) {
      const sha = commit.sha ?? randomBytes(20).toString("hex");
      shaList.push(sha);
      commits.set(
        sha,
        commit.files.map((file) => {
          const content = Buffer.isBuffer(file.content) ? file.content : Buffer.from(file.content);
          return { path: file.path, content, lfs: file.lfs ?? false, oid: gitOid(content), sha256: sha256(content) };
        }),
      );
    }
    const branches = new Map<string, string>();
    for (const [branch, index] of Object.entries(repo.branches ?? { main: 0 })) branches.set(branch, shaList[index] ?? "");
    stored.set(`${repo.type ?? "model"}:${repo.name}`, { repo, commits, shaList, branches });
  }
  const requests: RecordedRequest[] = [];
  const faults: Faults = {};
  const pageSize = options.treePageSize ?? 100;
  const stalled = new Set<ServerResponse>();

  const server = createServer((req, res) => {
    const record: RecordedRequest = {
      method: req.method ?? "GET",
      url: req.url ?? "/",
      authorization: req.headers.authorization,
      range: req.headers.range,
      bytesSent: 0,
    };
    requests.push(record);
    handle(req, res, record).catch((error: unknown) => {
      res.statusCode = 500;
      res.end(String(error));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse, record: RecordedRequest): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (faults.fail500 && url.pathname.includes(faults.fail500.urlIncludes) && countDown(faults, "fail500")) {
      return json(res, 500, { error: "internal error (injected)" });
    }
    const echo = faults.echoAuthorization;
    if (echo && url.pathname.includes(echo.urlIncludes) && countDown(faults, "echoAuthorization")) {
      return json(res, echo.status, { error: `Bad request: malformed header. Received headers: authorization=${req.headers.authorization ?? "none"}` });
    }
    const renamed = faults.renamed;
    if (renamed && url.pathname.includes(`/${renamed.from}/`)) {
      res.writeHead(307, { Location: `${url.pathname.replace(`/${renamed.from}/`, `/${renamed.to}/`)}${url.search}` });
      return void res.end();
    }
    const hang = faults.hangHead;
    if (hang && url.pathname.includes(hang.urlIncludes) && countDown(faults, "hangHead")) return void stalled.add(res);
    if (faults.stallJson && url.pathname.includes(faults.stallJson.urlIncludes)) {
      stalled.add(res);
      res.writeHead(200, { "Content-Type": "application/json" });
      record.bytesSent = 5;
      return void res.write('[{"a"');
    }
    const retry = faults.retryAfter;
    if (retry && url.pathname.includes(retry.urlIncludes) && countDown(faults, "retryAfter")) {
      return json(res, retry.status, { error: "slow down" }, { "Retry-After": retry.value });
    }
    const oversize = faults.oversizeJson;
    if (oversize && url.pathname.includes(oversize.urlIncludes)) return streamJson(res, record, oversize.bytes, oversize.declared ?? false);
    const api = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/(revision|tree|paths-info)\/(.+)$/.exec(url.pathname);
    if (api) {
      const repo = findRepo(api[1] === "datasets" ? "dataset" : "model", api[2] ?? "", res, req);
      if (!repo) return;
      const rev = decodeURIComponent(api[4] ?? "");
      const sha = repo.branches.get(rev) ?? (repo.commits.has(rev) ? rev : undefined);
      if (!sha) return json(res, 404, { error: `Invalid rev id: ${rev}` }, { "X-Error-Code": "RevisionNotFound" });
      const files = repo.commits.get(sha) ?? [];
      if (api[3] === "revision") {
        if (faults.malformedJson) {
          res.writeHead(200, { "Content-Type": "application/json" });
          return void res.end('{"sha": "not-json');
        }
        return json(res, 200, { _id: "x", id: repo.repo.name, sha, private: repo.repo.access?.kind === "private", gated: repo.repo.access?.kind === "gated" ? "auto" : false, lastModified: "2026-01-01T00:00:00.000Z", downloads: 0, likes: 0, siblings: files.map((f) => ({ rfilename: f.path })) });
      }
      if (api[3] === "tree") {
        const entries: Array<Record<string, unknown>> = [...treeEntries(files), ...(faults.extraTreeEntries ?? [])];
        const page = Number(url.searchParams.get("cursor") ?? "0");
        const slice = entries.slice(page * pageSize, (page + 1) * pageSize);
        const headers: Record<string, string> = {};
        if ((page + 1) * pageSize < entries.length) {
          const next = new URL(`${faults.nextPageOrigin ?? `http://${req.headers.host ?? ""}`}${url.pathname}${url.search}`);
          next.searchParams.set("cursor", String(page + 1));
          headers.Link = `<${next.href}>; rel="next"`;
        }
        return json(res, 200, slice, headers);
      }
      const body = JSON.parse(await readBody(req)) as { paths: string[] };
      return json(res, 200, treeEntries(files.filter((f) => body.paths.includes(f.path))).map((e) => ({ ...e, lastCommit: { id: sha, title: "commit", date: "2026-01-01T00:00:00.000Z" } })));
    }
    const resolve = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (resolve) {
      const repo = findRepo(resolve[1] ? "dataset" : "model", resolve[2] ?? "", res, req);
      if (!repo) return;
      const rev = decodeURIComponent(resolve[3] ?? "");
      const sha = repo.branches.get(rev) ?? (repo.commits.has(rev) ? rev : undefined);
      if (!sha) return json(res, 404, { error: "Revision not found" }, { "X-Error-Code": "RevisionNotFound" });
      const path = (resolve[4] ?? "").split("/").map(decodeURIComponent).join("/");
      const file = repo.commits.get(sha)?.find((f) => f.path === path);
      if (!file) return json(res, 404, { error: "Entry not found" }, { "X-Error-Code": "EntryNotFound" });
      if (faults.redirectFilesTo) {
        res.writeHead(302, { Location: `${faults.redirectFilesTo}${url.pathname}`, "X-Repo-Commit": sha });
        return void res.end();
      }
      return serveFile(req, res, record, file, sha);
    }
    if (url.pathname === "/api/models") return json(res, 200, []);
    json(res, 404, { error: "not found" });
  }

  function findRepo(type: "model" | "dataset", name: string, res: ServerResponse, req: IncomingMessage): StoredRepo | null {
    const repo = stored.get(`${type}:${name}`);
    if (!repo) {
      json(res, 404, { error: "Repository not found" }, { "X-Error-Code": "RepoNotFound" });
      return null;
    }
    const access = repo.repo.access;
    if (access && req.headers.authorization !== `Bearer ${access.token}`) {
      if (access.kind === "gated") json(res, 403, { error: "Access to this model is restricted" }, { "X-Error-Code": "GatedRepo" });
      else json(res, 401, { error: "Invalid credentials" }, { "X-Error-Code": "RepoNotFound" });
      return null;
    }
    return repo;
  }

  function serveFile(req: IncomingMessage, res: ServerResponse, record: RecordedRequest, file: StoredFile, sha: string): void {
    let content = file.content;
    if (faults.corrupt?.path === file.path) {
      content = Buffer.from(content);
      content[0] = (content[0] ?? 0) ^ 0xff;
    }
    const headers: Record<string, string> = {
      "X-Repo-Commit": sha,
      ETag: `"${file.lfs ? file.sha256 : file.oid}"`,
      "Accept-Ranges": "bytes",
      "Content-Type": "application/octet-stream",
    };
    if (file.lfs) {
      headers["X-Linked-ETag"] = `"${file.sha256}"`;
      headers["X-Linked-Size"] = String(file.content.length);
    }
    let start = 0;
    let end = content.length - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), end) : end;
      if (start >= content.length) {
        res.writeHead(416, { ...headers, "Content-Range": `bytes */${content.length}` });
        return void res.end();
      }
      status = 206;
      headers["Content-Range"] = `bytes ${start}-${end}/${content.length}`;
    }
    const body = content.subarray(start, end + 1);
    headers["Content-Length"] = String(body.length);
    res.writeHead(status, headers);
    if (req.method === "HEAD") return void res.end();
    const drop = faults.dropAfter;
    if (drop && drop.path === file.path && !range?.[2] && countDown(faults, "dropAfter")) {
      const part = body.subarray(0, drop.bytes);
      record.bytesSent = part.length;
      // Close gracefully (FIN, not RST) so the client surely receives the bytes sent before the cut.
      res.write(part, () => res.socket?.end());
      return;
    }
    const stall = faults.stallAfter;
    if (stall && stall.path === file.path && !range?.[2] && countDown(faults, "stallAfter")) {
      const part = body.subarray(0, range ? (stall.resumedBytes ?? stall.bytes) : stall.bytes);
      record.bytesSent = part.length;
      stalled.add(res);
      res.write(part);
      return;
    }
    record.bytesSent = body.length;
    res.end(body);
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    faults,
    shas: (name) => [...stored.values()].find((r) => r.repo.name === name)?.shaList ?? [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of stalled) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function treeEntries(files: StoredFile[]): Array<Record<string, unknown>> {
  return files.map((f) => ({
    type: "file",
    path: f.path,
    oid: f.oid,
    size: f.content.length,
    ...(f.lfs ? { lfs: { oid: f.sha256, size: f.content.length, pointerSize: 134 } } : {}),
  }));
}

function countDown(faults: Faults, key: "fail500" | "dropAfter" | "stallAfter" | "echoAuthorization" | "retryAfter" | "hangHead"): boolean {
  const fault = faults[key];
  if (!fault) return false;
  const times = fault.times ?? 1;
  if (times <= 1) delete faults[key];
  else fault.times = times - 1;
  return true;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "Content-Type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

/** A JSON array of `bytes` (about), written with backpressure until done or the client goes away. */
function streamJson(res: ServerResponse, record: RecordedRequest, bytes: number, declared: boolean): void {
  const chunk = Buffer.from(`${'"x",'.repeat(16383)}"x",`);
  res.writeHead(200, { "Content-Type": "application/json", ...(declared ? { "Content-Length": String(bytes) } : {}) });
  const write = (): void => {
    while (record.bytesSent < bytes - chunk.length) {
      record.bytesSent += chunk.length;
      if (!res.write(chunk)) return void res.once("drain", write);
    }
    res.end('"end"]');
  };
  if (declared) return void res.end("[");
  record.bytesSent = 1;
  res.write("[");
  res.on("close", () => res.removeAllListeners("drain"));
  write();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    req.on("data", (chunk: Buffer) => (data += chunk.toString()));
    req.on("end", () => resolve(data));
    req.on("error", reject);
  });
}

/** The files of a model folder as a hub commit; safetensors are served as LFS files, like on the real hub. */
export function filesOf(dir: string): FakeFile[] {
  return readdirSync(dir).map((path) => ({ path, content: readFileSync(join(dir, path)), lfs: path.endsWith(".safetensors") }));
}
