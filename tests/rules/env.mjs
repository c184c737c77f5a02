// Shared setup for the Firestore rules tests: one test environment per test file, pointed at the
// Firestore emulator named by FIRESTORE_EMULATOR_HOST and loaded with the repository's firestore.rules.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { initializeTestEnvironment } from '@firebase/rules-unit-testing';
import { doc, getDoc, setDoc, setLogLevel } from 'firebase/firestore';

// The SDK logs every PERMISSION_DENIED stream error as a warning; the assertions already report them.
setLogLevel('error');

// FIRESTORE_RULES_FILE lets mutation_check.mjs run the same suite against deliberately broken rules.
export const RULES_PATH =
  process.env.FIRESTORE_RULES_FILE || fileURLToPath(new URL('../../firestore.rules', import.meta.url));

function emulatorHostPort() {
  const value = process.env.FIRESTORE_EMULATOR_HOST;
  if (!value) {
    // Fail loudly instead of skipping: a rules suite that silently does not run proves nothing.
    throw new Error('FIRESTORE_EMULATOR_HOST is not set; run the suite with `bash tests/rules/run.sh`.');
  }
  const separator = value.lastIndexOf(':');
  return { host: value.slice(0, separator), port: Number(value.slice(separator + 1)) };
}

/**
 * Starts a rules test environment for one test file.
 *
 * Each file gets its own project id ("demo-rules-<suffix>") because `node --test` runs files in
 * parallel and the emulator keeps data per project, so one file's clearFirestore() cannot wipe
 * another file's seed data. The "demo-" prefix marks it as a project that never touches real services.
 */
export async function startRulesEnv(suffix) {
  const { host, port } = emulatorHostPort();
  return initializeTestEnvironment({
    projectId: `demo-rules-${suffix}`,
    firestore: { rules: readFileSync(RULES_PATH, 'utf8'), host, port },
  });
}

/** Writes documents with rules disabled, the way the Admin SDK does on the server. */
export async function seed(testEnv, docs) {
  await testEnv.withSecurityRulesDisabled(async (context) => {
    const db = context.firestore();
    for (const [path, data] of Object.entries(docs)) {
      await setDoc(doc(db, path), data);
    }
  });
}

/** Reads a document with rules disabled, to check what a denied request left behind. */
export async function readAsServer(testEnv, path) {
  let snapshot;
  await testEnv.withSecurityRulesDisabled(async (context) => {
    snapshot = await getDoc(doc(context.firestore(), path));
  });
  return snapshot;
}
