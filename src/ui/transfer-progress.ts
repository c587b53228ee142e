import type { Ora } from "ora";
import type { PullEvent } from "../hub/pull.js";
import { formatBytes, formatDuration, formatRate } from "./format.js";
import type { Reporter } from "./reporter.js";
import { startSpinner } from "./spinner.js";

/**
 * Shows a pull's progress: a live spinner line on a TTY, a plain line every few seconds in CI and pipes,
 * and throttled JSON progress events with --json. Per file and in total: bytes, rate, ETA.
 */
export function transferProgress(reporter: Reporter, options: { plainEveryMs?: number; jsonEveryMs?: number } = {}) {
  const plainEveryMs = options.plainEveryMs ?? 5000;
  const jsonEveryMs = options.jsonEveryMs ?? 1000;
  const started = Date.now();
  const files = new Map<string, { size: number; done: number }>();
  let total = 0;
  let done = 0;
  let fetched = 0;
  let fileCount = 0;
  let filesDone = 0;
  let lastPrint = started;
  let spinner: Ora | null = null;

  const rate = (): number => fetched / Math.max(0.001, (Date.now() - started) / 1000);
  const summary = (): string => {
    const r = rate();
    const eta = r > 0 ? (total - done) / r : Number.NaN;
    const active = [...files.entries()].filter(([, f]) => f.done < f.size).map(([path, f]) => `${path} ${Math.floor((100 * f.done) / Math.max(1, f.size))}%`);
    return `${filesDone}/${fileCount} files · ${formatBytes(done)} / ${formatBytes(total)} · ${formatRate(r)} · ETA ${formatDuration(eta)}${active.length ? ` · ${active.join(", ")}` : ""}`;
  };

  const tick = (force: boolean): void => {
    const now = Date.now();
    if (reporter.json) {
      if (!force && now - lastPrint < jsonEveryMs) return;
      lastPrint = now;
      reporter.event("progress", { files_done: filesDone, files: fileCount, bytes: done, total_bytes: total, bytes_per_second: Math.round(rate()) });
    } else if (spinner) {
      spinner.text = summary();
    } else if (force || now - lastPrint >= plainEveryMs) {
      lastPrint = now;
      reporter.info(summary());
    }
  };

  return {
    onEvent(event: PullEvent): void {
      switch (event.type) {
        case "resolved":
          total = event.bytes;
          done = event.cachedBytes;
          fileCount = event.files;
          reporter.event("resolved", { repo: event.repo, revision: event.revision, sha: event.sha, files: event.files, bytes: event.bytes, cached_bytes: event.cachedBytes });
          if (!reporter.json) reporter.info(`${event.repo}@${event.revision} → ${event.sha} · ${event.files} files · ${formatBytes(event.bytes)}${event.cachedBytes ? ` (${formatBytes(event.cachedBytes)} cached)` : ""}`);
          if (reporter.interactive && event.cachedBytes < event.bytes) spinner = startSpinner(summary(), reporter.stderr);
          break;
        case "file-start":
          files.set(event.path, { size: event.size, done: event.resumeFrom });
          done += event.resumeFrom;
          if (event.resumeFrom > 0) log(`resuming ${event.path} from ${formatBytes(event.resumeFrom)}`);
          break;
        case "bytes": {
          const file = files.get(event.path);
          if (file) file.done += event.bytes;
          done += event.bytes;
          fetched += event.bytes;
          tick(false);
          break;
        }
        case "file-done":
          filesDone += 1;
          files.delete(event.path);
          reporter.event("file", { path: event.path, size: event.size, downloaded: event.downloaded });
          if (event.downloaded) log(`${reporter.color.green("✓")} ${event.path} (${formatBytes(event.size)})`);
          else reporter.debug(`cached ${event.path}`);
          break;
        case "retry": {
          // Said every time: a pull that is silently retrying looks hung.
          const what = event.path ?? shortUrl(event.url);
          const of = event.attempts ? ` of ${event.attempts}` : "";
          reporter.event("retry", { path: what, attempt: event.attempt + 1, reason: event.reason, delay_ms: Math.round(event.delayMs) });
          log(`${what}: ${event.reason}; retrying in ${(event.delayMs / 1000).toFixed(1)} s (attempt ${event.attempt + 1}${of})`);
          break;
        }
        case "lock-wait":
          reporter.event("lock_wait", { path: event.path, pid: event.owner.pid, host: event.owner.host, since: event.owner.since });
          log(`${event.path}: waiting for pid ${event.owner.pid}${event.owner.host ? ` on ${event.owner.host}` : ""}, which is downloading it`);
          break;
        case "offline":
          log(`offline (${event.reason}): using the cached snapshot`);
          break;
      }
    },
    finish(): void {
      spinner?.stop();
      spinner = null;
    },
  };

  function shortUrl(url: string): string {
    try {
      return new URL(url).pathname;
    } catch {
      return url;
    }
  }

  function log(message: string): void {
    if (reporter.json) return;
    if (spinner) spinner.clear();
    reporter.info(message);
    if (spinner) spinner.render();
  }
}
