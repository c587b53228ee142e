import { RuntimeFailure } from "../errors.js";
import { formatBytes } from "../ui/format.js";

/** Metadata answers (revision info, tree pages) are parsed whole in memory; beyond this they are refused. */
export const DEFAULT_MAX_METADATA_BYTES = 64_000_000;

/** The answer to a metadata call (anything under `/api/`), as opposed to file bytes streamed to disk. */
export function isMetadataUrl(url: string): boolean {
  return new URL(url).pathname.startsWith("/api/");
}

function tooLarge(url: string, limit: number, seen: string): RuntimeFailure {
  return new RuntimeFailure(
    `the hub's answer to ${new URL(url).pathname} is ${seen}, over the ${formatBytes(limit)} limit for metadata; ` +
      `refusing to read it. Check HF_ENDPOINT (a genuine hub answers in kilobytes), or try again later.`,
  );
}

export interface LimitBodyParams {
  url: string;
  /** Bytes read at most. */
  limit: number;
  /** No byte for this long fails the body (a stalled answer), and `cut` aborts the request. */
  stallMs: number;
  cut: () => void;
}

/**
 * The same response with a body that fails once more than `limit` bytes arrive (a declared Content-Length over
 * the limit fails at once), or when it stalls, so a hostile or broken server can neither make us buffer
 * gigabytes of JSON nor hold us for minutes.
 */
export async function limitBody(response: Response, params: LimitBodyParams): Promise<Response> {
  const { url, limit } = params;
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel();
    throw tooLarge(url, limit, formatBytes(declared));
  }
  if (!response.body) return response;
  let seen = 0;
  let timer: NodeJS.Timeout | undefined;
  let rearm = (): void => {};
  const counted = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      start(controller) {
        const arm = (): void => {
          clearTimeout(timer);
          timer = setTimeout(() => {
            controller.error(stalled(url, params.stallMs, seen));
            params.cut();
          }, params.stallMs);
          // An answer nobody reads must not keep the process alive.
          timer.unref();
        };
        arm();
        rearm = arm;
      },
      transform(chunk, controller) {
        seen += chunk.byteLength;
        rearm();
        if (seen > limit) {
          clearTimeout(timer);
          controller.error(tooLarge(url, limit, `more than ${formatBytes(limit)}`));
        } else controller.enqueue(chunk);
      },
      flush() {
        clearTimeout(timer);
      },
    }),
  );
  const limited = new Response(counted, { status: response.status, statusText: response.statusText, headers: response.headers });
  // A constructed Response has no url; the hub client quotes it in its errors.
  Object.defineProperty(limited, "url", { value: response.url || url });
  return limited;
}

function stalled(url: string, stallMs: number, seen: number): RuntimeFailure {
  return new RuntimeFailure(
    `the hub's answer to ${new URL(url).pathname} stalled: no data for ${Number((stallMs / 1000).toFixed(1))} s after ${formatBytes(seen)}; ` +
      `check your connection (or HF_ENDPOINT), then run the command again.`,
  );
}
