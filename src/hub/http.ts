import { Interrupted, RuntimeFailure } from "../errors.js";

/** The hub could not be reached at all (DNS, refused, reset), after retries. */
export class NetworkFailure extends RuntimeFailure {}

export interface HubHttpOptions {
  token?: string | undefined;
  /** Attempts for one request, the first included. */
  attempts?: number;
  /** First backoff delay; doubles each retry with jitter, capped at 8 s. */
  baseDelayMs?: number;
  signal?: AbortSignal | undefined;
  userAgent?: string;
  onRetry?: (info: { url: string; attempt: number; reason: string; delayMs: number }) => void;
}

export interface HubHttp {
  fetch: typeof fetch;
  /** The hub's `X-Error-Code` header (RepoNotFound, RevisionNotFound, EntryNotFound, …) of a failed response. */
  errorCode(url: string): string | undefined;
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);

/**
 * fetch for the hub: adds the bearer token, retries network errors and 5xx/429 with bounded exponential backoff,
 * and remembers error codes so failures can be explained. Only the response head is retried here: a body that
 * breaks mid-stream is resumed by the downloader.
 */
export function createHubHttp(options: HubHttpOptions = {}): HubHttp {
  const attempts = options.attempts ?? 5;
  const baseDelayMs = options.baseDelayMs ?? 250;
  const errorCodes = new Map<string, string>();

  const hubFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const headers = new Headers(init.headers);
    if (options.token && !headers.has("authorization")) headers.set("authorization", `Bearer ${options.token}`);
    headers.set("user-agent", options.userAgent ?? "finetune");
    let lastReason = "";
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      if (options.signal?.aborted) throw new Interrupted("interrupted");
      try {
        const response = await fetch(url, { ...init, headers, signal: options.signal ?? null });
        if (!RETRY_STATUS.has(response.status) || attempt === attempts) {
          const code = response.headers.get("x-error-code");
          if (!response.ok && code) errorCodes.set(response.url || url, code);
          if (!response.ok && code) errorCodes.set(url, code);
          return response;
        }
        lastReason = `HTTP ${response.status}`;
        await response.body?.cancel();
      } catch (error) {
        if (options.signal?.aborted) throw new Interrupted("interrupted");
        lastReason = describeNetworkError(error);
        if (attempt === attempts) {
          throw new NetworkFailure(
            `could not reach ${new URL(url).origin} (${lastReason}) after ${attempts} attempts; ` +
              `check your network connection, or HF_ENDPOINT if you set it.`,
          );
        }
      }
      const delayMs = Math.min(8000, baseDelayMs * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
      options.onRetry?.({ url, attempt, reason: lastReason, delayMs });
      await sleep(delayMs, options.signal);
    }
    throw new RuntimeFailure(`request to ${url} failed: ${lastReason}`);
  };

  return { fetch: hubFetch as typeof fetch, errorCode: (url) => errorCodes.get(url) };
}

export function describeNetworkError(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as Error & { code?: unknown }).code;
      return typeof code === "string" ? `${code}: ${cause.message}` : cause.message;
    }
    return error.message;
  }
  return String(error);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }
    function onAbort(): void {
      clearTimeout(timer);
      reject(new Interrupted("interrupted"));
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
