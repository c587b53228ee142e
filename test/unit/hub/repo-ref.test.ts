import { describe, expect, it } from "vitest";
import { UserError } from "../../../src/errors.js";
import { parseRepoRef } from "../../../src/hub/repo-ref.js";

describe("parseRepoRef", () => {
  it.each([
    ["HuggingFaceTB/SmolLM2-135M", {}, { type: "model", name: "HuggingFaceTB/SmolLM2-135M", revision: undefined }],
    ["org/name@dev", {}, { type: "model", name: "org/name", revision: "dev" }],
    ["org/name@refs/pr/1", {}, { type: "model", name: "org/name", revision: "refs/pr/1" }],
    ["datasets/org/data", {}, { type: "dataset", name: "org/data", revision: undefined }],
    ["org/data", { dataset: true }, { type: "dataset", name: "org/data", revision: undefined }],
    ["gpt2", {}, { type: "model", name: "gpt2", revision: undefined }],
    ["org/name", { revision: "v1.0" }, { type: "model", name: "org/name", revision: "v1.0" }],
    ["org/name@v1.0", { revision: "v1.0" }, { type: "model", name: "org/name", revision: "v1.0" }],
  ] as const)("%s %o", (input, opts, expected) => {
    expect(parseRepoRef(input, opts)).toEqual(expected);
  });

  it.each([
    ["a/b/c", "not a hub repo id"],
    ["../etc", "not a hub repo id"],
    ["org/..", "not a hub repo id"],
    ["org/na me", "not a hub repo id"],
    ["", "not a hub repo id"],
    ["org/name@", 'nothing after "@"'],
    ["org/name@../x", "not a valid revision"],
  ])("refuses %j", (input, message) => {
    expect(() => parseRepoRef(input)).toThrow(UserError);
    expect(() => parseRepoRef(input)).toThrow(message);
  });

  it("refuses two different revisions", () => {
    expect(() => parseRepoRef("org/name@a", { revision: "b" })).toThrow('names revision "a" but --revision says "b"');
  });
});
