// Prints the end of a CI run from vitest's JSON report and the skip log the test helpers append to
// (test/helpers/needs.ts): every skipped test with the reason it gave, then, as the last line,
// "N passed, N failed, N skipped". A skip that gave no reason counts as a failure: a test may only skip by saying
// why. Exit code 1 when anything failed (or there is no report), else 0.
//   node .ci/summary.mjs <vitest.json> [<skips.jsonl>]
import { existsSync, readFileSync } from "node:fs";
import { relative } from "node:path";

const [reportPath, skipLogPath] = process.argv.slice(2);
if (!reportPath || !existsSync(reportPath)) {
  console.log(`ci: no test report (${reportPath ?? "no path given"}); the test run did not finish`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
const report = JSON.parse(readFileSync(reportPath, "utf8"));
const reasons = skipLogPath && existsSync(skipLogPath)
  ? readFileSync(skipLogPath, "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line))
  : [];

const root = process.cwd();
const skipped = [];
for (const file of report.testResults ?? []) {
  const name = relative(root, file.name);
  for (const test of file.assertionResults ?? []) {
    if (test.status === "passed" || test.status === "failed") continue;
    // The helper logs the name it was given: a test's title, or the title of the describe around it.
    const logged = reasons.find((r) => r.file === name && (r.name === test.title || (test.ancestorTitles ?? []).includes(r.name)));
    skipped.push({ name: `${name} > ${test.fullName}`, reason: logged?.reason ?? null });
  }
}
const unexplained = skipped.filter((s) => s.reason === null);
// A file that failed to load has no tests to count; count it once.
const brokenFiles = (report.testResults ?? []).filter((f) => f.status === "failed" && (f.assertionResults ?? []).every((t) => t.status !== "failed")).length;
const failed = report.numFailedTests + brokenFiles + unexplained.length;

if (skipped.length > 0) {
  console.log(`${skipped.length} skipped:`);
  for (const s of skipped) console.log(`  ${s.name}: ${s.reason ?? "skipped without saying why (counted as failed: use test/helpers/needs.ts)"}`);
}
console.log(`${report.numPassedTests} passed, ${failed} failed${skipped.length > 0 ? `, ${skipped.length} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);
