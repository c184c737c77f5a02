// Runs the firebase-tools CLI (`firebase emulators:start --only auth ...`) with one start-up change:
// the Auth emulator's OpenAPI request validators are compiled on first use instead of all at start.
// Compiling every operation's schemas up front costs ~15 s of CPU, most of the emulator's start time;
// requests are validated exactly as before. If the module layout ever changes, the CLI runs unchanged.
"use strict";
const path = require("node:path");

const cliRoot = path.dirname(require.resolve("firebase-tools/package.json"));
try {
  const exegesisExpress = require(require.resolve("exegesis-express", { paths: [cliRoot] }));
  const middleware = exegesisExpress.middleware;
  exegesisExpress.middleware = (api, options) =>
    middleware(api, { ...options, lazyCompileValidationSchemas: true });
} catch (error) {
  console.warn(`auth_emulator: starting without lazy schema compilation (${error.message})`);
}
require(path.join(cliRoot, "lib", "bin", "firebase.js"));
