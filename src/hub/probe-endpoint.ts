import { describeNetworkError } from "./http.js";
import { maskUrl, redactSecrets } from "./redact.js";

export interface EndpointProbe {
  endpoint: string;
  reachable: boolean;
  status?: number;
  ms?: number;
  error?: string;
}

/**
 * One short request to see whether the hub answers at all; any HTTP status counts as an answer.
 * The endpoint is reported with any credentials in it masked, and the probe sends none.
 */
export async function probeEndpoint(endpoint: string, timeoutMs = 3000): Promise<EndpointProbe> {
  const started = Date.now();
  const shown = maskUrl(endpoint);
  const url = new URL(`${endpoint}/api/models?limit=1`);
  url.username = "";
  url.password = "";
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return { endpoint: shown, reachable: true, status: response.status, ms: Date.now() - started };
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    return { endpoint: shown, reachable: false, error: timedOut ? `no answer within ${timeoutMs} ms` : redactSecrets(describeNetworkError(error)) };
  }
}
