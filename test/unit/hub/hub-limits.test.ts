import { describe, expect, it } from "vitest";
import { hubLimits } from "../../../src/hub/hub-limits.js";

describe("hubLimits", () => {
  it("defaults to a 30 s stall, a 120 s lock wait and a 60 s Retry-After bound; variables override in seconds", () => {
    expect(hubLimits({})).toEqual({ stallMs: 30_000, lockWaitMs: 120_000, maxRetryAfterMs: 60_000 });
    expect(hubLimits({ FINETUNE_HUB_STALL_SECONDS: "0.5", FINETUNE_HUB_LOCK_WAIT_SECONDS: " 2 ", FINETUNE_HUB_MAX_RETRY_AFTER_SECONDS: "600" })).toEqual({
      stallMs: 500,
      lockWaitMs: 2000,
      maxRetryAfterMs: 600_000,
    });
  });

  it("refuses values that are not a positive number of seconds, naming the variable", () => {
    for (const value of ["0", "-1", "soon", "1e9"]) {
      expect(() => hubLimits({ FINETUNE_HUB_STALL_SECONDS: value })).toThrow(
        `FINETUNE_HUB_STALL_SECONDS=${JSON.stringify(value)} must be a number of seconds above 0 and at most 86400 (default 30); fix or unset it.`,
      );
    }
  });
});
