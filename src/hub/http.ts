import { Interrupted, RuntimeFailure } from "../errors.js";
import { DEFAULT_MAX_METADATA_BYTES, isMetadataUrl, limitBody } from "./limit-body.js";
import { registerSecret } from "./redact.js";
import { describeWait, retryAfterMs } from "./retry-after.js";
import { sleep } from "../io/sleep.js";

/** The hub could not be reached at all (DNS, refused, reset), after retries. */
export class NetworkFailure extends RuntimeFailure {}

export interface RetryInfo {
  url: string;
  /** The attempt that failed (1-based) and how many there are in all. */
  attempt: number;
  attempts: number;
  reason: string;
  delayMs: number;
}

export interface HubHttpOptions {
  /** The configured hub (HF_ENDPOINT). Credentials go to this origin only, never to a host it points us at. */
  endpoint: string;
  token?: string | undefined;
  /** Attempts for one request, the first included. */
  attempts?: number;
  /** First backoff delay; doubles each retry with jitter, capped at 8 s. */
  baseDelayMs?: number;
  /** Longest `Retry-After` waited for (default 60 s); a longer one fails at once, saying when to try again. */
  maxRetryAfterMs?: number;
  /** Largest metadata (`/api/…`) answer read (default 64 MB). */
  maxMetadataBytes?: number;
  /** No response head, or no byte of a metadata answer, for this long: the attempt is cut (default 30 s). */
  stallMs?: number;
  signal?: AbortSignal | undefined;
  userAgent?: string;
  onRetry?: (info: RetryInfo) => void;
}

export interface HubHttp {
  fetch: typeof fetch;
  /** The hub's `X-Error-Code` header (RepoNotFound, RevisionNotFound, EntryNotFound, …) of a failed response. */
  errorCode(url: string): string | undefined;
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

/**
 * fetch for the hub, used for our own requests and handed to @huggingface/hub for its calls: sends the bearer
 * token only to the endpoint's origin (redirects and `Link` pages elsewhere get none), follows redirects itself
 * so that rule holds on every hop, retries network errors and 5xx/429 with bounded backoff (honouring a
 * bounded `Retry-After`), caps metadata answers, and remembers error codes so failures can be explained.
 * Only the response head is retried here: a body that breaks mid-stream is resumed by the downloader.
 */
export function createHubHttp(options: HubHttpOptions): HubHttp {
  const attempts = options.attempts ?? 5;
  const baseDelayMs = options.baseDelayMs ?? 250;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  const maxMetadataBytes = options.maxMetadataBytes ?? DEFAULT_MAX_METADATA_BYTES;
  const stallMs = options.stallMs ?? 30_000;
  const errorCodes = new Map<string, string>();
  const endpoint = new URL(options.endpoint);
  const credential = endpointCredential(endpoint, options.token);

  const send = async (url: string, init: RequestInit, signal: AbortSignal | undefined): Promise<Response> => {
    let current = url;
    let method = init.method ?? "GET";
    let body = init.body;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop += 1) {
      const headers = new Headers(init.headers);
      // Whoever built the request, its credentials are decided here, per origin.
      headers.delete("authorization");
      if (credential && new URL(current).origin === endpoint.origin) headers.set("authorization", credential);
      headers.set("user-agent", options.userAgent ?? "finetune");
      const response = await fetch(current, { ...init, method, body: body ?? null, headers, redirect: "manual", signal: signal ?? null });
      const location = response.headers.get("location");
      if (!REDIRECT_STATUS.has(response.status) || !location || init.redirect === "manual") return response;
      await response.body?.cancel();
      if (init.redirect === "error") throw new RuntimeFailure(`${new URL(current).pathname} redirected, which this request does not allow`);
      current = withoutCredentials(new URL(location, current).href);
      if (response.status === 303 || (method === "POST" && response.status !== 307 && response.status !== 308)) {
        method = "GET";
        body = undefined;
      }
    }
    throw new RuntimeFailure(`${new URL(url).pathname}: more than ${MAX_REDIRECTS} redirects; check HF_ENDPOINT.`);
  };

  const hubFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = withoutCredentials(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
    const signal = combine(options.signal, init.signal ?? undefined);
    const stop = (): Error => (options.signal?.aborted ? new Interrupted("interrupted") : asError(init.signal?.reason));
    let lastReason = "";
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      if (signal?.aborted) throw stop();
      let delayMs = Math.min(8000, baseDelayMs * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
      // A server that accepts the connection and never answers would otherwise hold us for undici's 300 s.
      const cut = new AbortController();
      const timer = setTimeout(() => cut.abort(), stallMs);
      try {
        const response = await send(url, init, combine(signal, cut.signal));
        clearTimeout(timer);
        if (!RETRY_STATUS.has(response.status) || attempt === attempts) {
          const code = response.headers.get("x-error-code");
          if (!response.ok && code) errorCodes.set(response.url || url, code);
          if (!response.ok && code) errorCodes.set(url, code);
          if (!isMetadataUrl(response.url || url)) return response;
          return await limitBody(response, { url, limit: maxMetadataBytes, stallMs, cut: () => cut.abort() });
        }
        lastReason = `HTTP ${response.status}`;
        const asked = retryAfterMs(response.headers.get("retry-after"));
        await response.body?.cancel();
        if (asked !== null) {
          if (asked > maxRetryAfterMs) {
            throw new RuntimeFailure(
              `${endpoint.host} answered HTTP ${response.status} to ${new URL(url).pathname} and asks to retry after ` +
                `${describeWait(asked)}, longer than finetune waits (${Math.round(maxRetryAfterMs / 1000)} s); try again then.`,
            );
          }
          delayMs = asked;
          lastReason += `, the hub asked to wait ${Math.ceil(asked / 1000)} s (Retry-After)`;
        }
      } catch (error) {
        clearTimeout(timer);
        if (signal?.aborted) throw stop();
        if (error instanceof RuntimeFailure) throw error;
        lastReason = cut.signal.aborted ? `no answer within ${seconds(stallMs)} s` : describeNetworkError(error);
        if (attempt === attempts) {
          throw new NetworkFailure(
            `could not reach ${new URL(url).origin} (${lastReason}) after ${attempts} attempts; ` +
              `check your network connection, or HF_ENDPOINT if you set it.`,
          );
        }
      }
      options.onRetry?.({ url, attempt, attempts, reason: lastReason, delayMs });
      await sleep(delayMs, signal, stop);
    }
    throw new RuntimeFailure(`request to ${url} failed: ${lastReason}`);
  };

  return { fetch: hubFetch as typeof fetch, errorCode: (url) => errorCodes.get(url) };
}

/** The Authorization value for the endpoint: the token, else Basic from credentials written into HF_ENDPOINT. */
function endpointCredential(endpoint: URL, token: string | undefined): string | undefined {
  registerSecret(token);
  if (token) return `Bearer ${token}`;
  if (!endpoint.username && !endpoint.password) return undefined;
  const user = decodeURIComponent(endpoint.username);
  const password = decodeURIComponent(endpoint.password);
  registerSecret(password);
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

/** fetch refuses URLs with credentials (and they must never travel in a URL): they go in a header instead. */
function withoutCredentials(url: string): string {
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return url;
  parsed.username = "";
  parsed.password = "";
  return parsed.href;
}

function seconds(ms: number): number {
  return Number((ms / 1000).toFixed(1));
}

function combine(a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  if (a && b) return AbortSignal.any([a, b]);
  return a ?? b;
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Interrupted("interrupted");
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
