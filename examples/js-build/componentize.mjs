// Builds one JavaScript source into a component with componentize-js's API (the jco CLI's
// download step does not work offline). Run by componentize.sh from the pinned install.
// Usage: node componentize.mjs WIT_DIR WORLD SOURCE OUT
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";

const [witPath, worldName, sourcePath, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node componentize.mjs WIT_DIR WORLD SOURCE OUT");
  process.exit(2);
}
const { component } = await componentize({
  sourcePath,
  witPath,
  worldName,
  // The gateway links no wasi:http; with these features on, the engine imports it for fetch().
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(out, component);
