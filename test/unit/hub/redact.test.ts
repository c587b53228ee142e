import { describe, expect, it } from "vitest";
import { maskUrl, redactSecrets, registerSecret } from "../../../src/hub/redact.js";
import { describeWait, retryAfterMs } from "../../../src/hub/retry-after.js";

describe("redactSecrets", () => {
  it("masks token-shaped strings, echoed Authorization headers, bearer values, URL credentials and registered secrets", () => {
    registerSecret("plain-secret-value");
    const cases: Array<[string, string]> = [
      ["token hf_abcdefghijklmnopqrstuvwxyz012345 leaked", "token hf_*** leaked"],
      ['{"error":"echo: authorization=Bearer anything-at-all"}', '{"error":"echo: authorization=***"}'],
      ["Authorization: Basic dXNlcjpwYXNz", "Authorization: ***"],
      ["sent Bearer abc.def-ghijkl to x", "sent Bearer *** to x"],
      ["http://alice:pw@host:8080/api and https://tok@h/x", "http://***@host:8080/api and https://***@h/x"],
      ["a plain-secret-value in text", "a *** in text"],
      // Not secrets: short hf_ names, prose, URLs without credentials, e-mail addresses.
      ["hf_model.safetensors, Basic usage, Bearer of news", "hf_model.safetensors, Basic usage, Bearer of news"],
      ["https://huggingface.co/org/name and me@example.com", "https://huggingface.co/org/name and me@example.com"],
    ];
    for (const [input, output] of cases) expect(redactSecrets(input)).toBe(output);
  });

  it("keeps a JSON line valid JSON", () => {
    const line = JSON.stringify({ message: "x hf_abcdefghijklmnopqrstuvwxyz012345 y", url: "http://u:p@h/" });
    expect(JSON.parse(redactSecrets(line))).toEqual({ message: "x hf_*** y", url: "http://***@h/" });
  });

  it("maskUrl hides credentials even in text that is not a valid URL", () => {
    expect(maskUrl("http://user:pass@127.0.0.1:9")).toBe("http://***@127.0.0.1:9");
    expect(maskUrl("ht!tp://user:pass@x")).toBe("ht!tp://***@x");
    expect(maskUrl("https://huggingface.co")).toBe("https://huggingface.co");
  });
});

describe("retryAfterMs", () => {
  it("reads delta-seconds and HTTP dates, and ignores garbage", () => {
    const now = Date.parse("2026-12-03T10:00:00Z");
    expect(retryAfterMs("3600", now)).toBe(3_600_000);
    expect(retryAfterMs(" 0 ", now)).toBe(0);
    expect(retryAfterMs("Thu, 03 Dec 2026 10:00:30 GMT", now)).toBe(30_000);
    expect(retryAfterMs("Thu, 03 Dec 2026 09:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs("-5", now)).toBeNull();
    expect(retryAfterMs("soon", now)).toBeNull();
    expect(retryAfterMs(null, now)).toBeNull();
    expect(describeWait(3_600_000, now)).toBe("3600 s (at 11:00:00 UTC)");
  });
});
