import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { writeFailure } from "../../../src/io/write-failure.js";

function sysError(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: failed, write '${path}'`), { code, path });
}

describe("writeFailure", () => {
  it("turns ENOSPC into a UserError naming the path, what was written, the bytes needed and free", () => {
    const error = writeFailure({ error: sysError("ENOSPC", "/tmp/run/checkpoints/step-40/trainer.bin"), what: "checkpoint step 40", bytesNeeded: 4096 });
    expect(error).toBeInstanceOf(UserError);
    expect(error?.exitCode).toBe(2);
    expect(error?.message).toContain("/tmp/run/checkpoints/step-40/trainer.bin");
    expect(error?.message).toContain("checkpoint step 40");
    expect(error?.message).toContain("it needs about 4096 bytes");
    expect(error?.message).toMatch(/\d+ bytes free/);
    expect(error?.message).toContain("--output");
  });

  it("turns EROFS and EACCES into a UserError saying why", () => {
    expect(writeFailure({ error: sysError("EROFS", "/ro/x") })?.message).toContain("read-only");
    expect(writeFailure({ error: sysError("EACCES", "/ro/x") })?.message).toContain("permission denied");
  });

  it("leaves other errors and errors without a path alone", () => {
    expect(writeFailure({ error: sysError("EIO", "/x") })).toBeUndefined();
    expect(writeFailure({ error: Object.assign(new Error("x"), { code: "ENOSPC" }) })).toBeUndefined();
    expect(writeFailure({ error: new Error("plain") })).toBeUndefined();
  });
});

describe("writeAll", () => {
  it("retries short writes and reports a write that takes nothing as ENOSPC naming the path, not an endless loop", async () => {
    const { writeAll } = await import("../../../src/io/atomic.js");
    const taken: number[] = [];
    // A disk that takes 3 bytes, then 2, then nothing.
    const answers = [3, 2, 0];
    const handle = {
      write: async (_b: Uint8Array, _offset: number, length: number) => {
        const bytesWritten = Math.min(length, answers.shift() ?? 0);
        taken.push(bytesWritten);
        return { bytesWritten, buffer: _b };
      },
    } as unknown as import("node:fs/promises").FileHandle;
    const failure = await writeAll(handle, new Uint8Array(10), "/out/model.safetensors").catch((e: unknown) => e);
    expect(taken).toEqual([3, 2, 0]);
    expect(writeFailure({ error: failure })?.message).toContain("/out/model.safetensors");
  });
});
