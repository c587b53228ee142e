import { UserError } from "../errors.js";

/** How long the hub client waits before it gives up and says so. */
export interface HubLimits {
  /** No byte of a download for this long: the connection is stalled, cut and resumed. */
  stallMs: number;
  /** Another process holds a blob's lock and its download makes no progress for this long: give up. */
  lockWaitMs: number;
  /** The longest `Retry-After` honoured; a longer one fails at once, saying when to retry. */
  maxRetryAfterMs: number;
}

const SETTINGS: Array<[keyof HubLimits, string, number]> = [
  ["stallMs", "FINETUNE_HUB_STALL_SECONDS", 30],
  ["lockWaitMs", "FINETUNE_HUB_LOCK_WAIT_SECONDS", 120],
  ["maxRetryAfterMs", "FINETUNE_HUB_MAX_RETRY_AFTER_SECONDS", 60],
];

/** The defaults, each overridable by an environment variable in seconds (slow links, tests). */
export function hubLimits(env: NodeJS.ProcessEnv): HubLimits {
  const limits: HubLimits = { stallMs: 0, lockWaitMs: 0, maxRetryAfterMs: 0 };
  for (const [key, name, seconds] of SETTINGS) {
    const raw = env[name]?.trim();
    const value = raw ? Number(raw) : seconds;
    if (!Number.isFinite(value) || value <= 0 || value > 86_400) {
      throw new UserError(`${name}=${JSON.stringify(raw)} must be a number of seconds above 0 and at most 86400 (default ${seconds}); fix or unset it.`);
    }
    limits[key] = value * 1000;
  }
  return limits;
}
