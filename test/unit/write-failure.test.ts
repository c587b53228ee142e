import { describe, expect, it } from "vitest";
import { UserError } from "../../src/errors.js";
import { writeFailure } from "../../src/io/write-failure.js";

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
    expect(error?.message).toContain("needed 4096 bytes");
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
