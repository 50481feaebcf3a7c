// Writes docs/cli.md from the commands' own help (`npm run cli-doc`); cli/test/cli-doc.test.ts checks it stays so.
import { writeFileSync } from "node:fs";
import { cliReference } from "@shoal/cli";

writeFileSync(new URL("../docs/cli.md", import.meta.url), cliReference());
