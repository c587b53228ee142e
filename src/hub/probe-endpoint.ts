import { describeNetworkError } from "./http.js";

export interface EndpointProbe {
  endpoint: string;
  reachable: boolean;
  status?: number;
  ms?: number;
  error?: string;
}

/** One short request to see whether the hub answers at all; any HTTP status counts as an answer. */
export async function probeEndpoint(endpoint: string, timeoutMs = 3000): Promise<EndpointProbe> {
  const started = Date.now();
  try {
    const response = await fetch(`${endpoint}/api/models?limit=1`, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return { endpoint, reachable: true, status: response.status, ms: Date.now() - started };
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    return { endpoint, reachable: false, error: timedOut ? `no answer within ${timeoutMs} ms` : describeNetworkError(error) };
  }
}
