// Proves the rules suite can fail: runs it against firestore.rules and then against deliberately
// weakened copies ("mutants"), one plausible mistake each. The real rules must pass; every mutant
// must make at least one test fail. Needs FIRESTORE_EMULATOR_HOST, so run it through the wrapper:
//   bash tests/rules/with-emulator.sh node tests/rules/mutation_check.mjs
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const testsDir = fileURLToPath(new URL('.', import.meta.url));
const rulesPath = fileURLToPath(new URL('../../firestore.rules', import.meta.url));
const testFiles = readdirSync(testsDir)
  .filter((name) => name.endsWith('.test.mjs'))
  .map((name) => join(testsDir, name));

// Each mutant replaces one exact snippet of firestore.rules (which must occur exactly once).
const MUTANTS = [
  {
    name: 'any signed-in user may read any profile',
    find: 'allow get: if isOwner(uid);',
    replace: 'allow get: if isSignedIn();',
  },
  {
    name: 'profiles may also be listed by their owner',
    find: 'allow get: if isOwner(uid);',
    replace: 'allow read: if isOwner(uid);',
  },
  {
    name: "a user may create someone else's profile",
    find: 'allow create: if isOwner(uid) &&',
    replace: 'allow create: if isSignedIn() &&',
  },
  {
    name: 'create accepts any field',
    find: 'data.keys().hasOnly(creatableProfileFields())',
    replace: 'true',
  },
  {
    name: 'created_at may come from the device clock',
    find: '&& data.created_at == request.time',
    replace: '',
  },
  {
    name: 'the profile email is not checked against the token',
    find: '&& validProfileEmail(data)',
    replace: '',
  },
  {
    name: 'a token without email may claim any email',
    find: "('email' in request.auth.token\n",
    replace: "(!('email' in request.auth.token) || request.auth.token.email == data.email\n",
  },
  {
    name: 'display_name limit off by one',
    find: "optionalString(data, 'display_name', 100)",
    replace: "optionalString(data, 'display_name', 101)",
  },
  {
    name: 'photo_url limit off by one',
    find: "optionalString(data, 'photo_url', 2048)",
    replace: "optionalString(data, 'photo_url', 2049)",
  },
  {
    name: 'locale limit off by one',
    find: "optionalString(data, 'locale', 20)",
    replace: "optionalString(data, 'locale', 21)",
  },
  {
    name: 'string fields are not type-checked',
    find: '(data[field] is string && data[field].size() <= maxSize)',
    replace: '(data[field].size() <= maxSize)',
  },
  {
    name: 'marketing_opt_in is not type-checked',
    find: 'data[field] is bool',
    replace: 'true',
  },
  {
    name: 'updates may touch email and created_at',
    find: 'affectedKeys().hasOnly(editableProfileFields())',
    replace: 'affectedKeys().hasOnly(creatableProfileFields())',
  },
  {
    name: 'updates may touch any field',
    find: 'affectedKeys().hasOnly(editableProfileFields())',
    replace: 'affectedKeys().size() >= 0',
  },
  {
    name: 'updated values are not validated',
    find: '&& validEditableFields(request.resource.data);',
    replace: ';',
  },
  {
    name: 'the owner may delete their profile',
    find: 'allow delete: if false;',
    replace: 'allow delete: if isOwner(uid);',
  },
  {
    name: "another user's profile may be updated",
    find: 'allow update: if isOwner(uid) && validProfileUpdate();',
    replace: 'allow update: if isSignedIn() && validProfileUpdate();',
  },
  {
    name: 'profile rules also cover its subcollections',
    find: 'match /users/{uid} {',
    replace: 'match /users/{uid}/{rest=**} {',
  },
  {
    name: 'any signed-in user may read any support request',
    find: 'allow read: if isSignedIn() && resource.data.uid == request.auth.uid;',
    replace: 'allow read: if isSignedIn();',
  },
  {
    name: 'clients may create support requests carrying their uid',
    find: 'allow create, update, delete: if false;',
    replace:
      'allow create: if isSignedIn() && request.resource.data.uid == request.auth.uid;\n' +
      '      allow update, delete: if false;',
  },
  {
    name: 'owners may update or delete their support requests',
    find: 'allow create, update, delete: if false;',
    replace: 'allow create: if false;\n      allow update, delete: if resource.data.uid == request.auth.uid;',
  },
  {
    name: 'the catch-all lets signed-in users read',
    find: 'allow read, write: if false;',
    replace: 'allow read: if isSignedIn();\n      allow write: if false;',
  },
  {
    name: 'the catch-all lets users write documents carrying their uid',
    find: 'allow read, write: if false;',
    replace: 'allow read: if false;\n      allow write: if isSignedIn() && request.resource.data.uid == request.auth.uid;',
  },
  {
    name: 'the catch-all lets users delete documents carrying their uid',
    find: 'allow read, write: if false;',
    replace: 'allow read, create, update: if false;\n      allow delete: if resource.data.uid == request.auth.uid;',
  },
  {
    name: 'server data readable by an admin claim',
    find: 'allow read, write: if false;',
    replace: 'allow read: if isSignedIn() && request.auth.token.admin == true;\n      allow write: if false;',
  },
];

/** A mutant that does not compile would fail every test and prove nothing, so it must load. */
async function assertCompiles(name, rules) {
  const host = process.env.FIRESTORE_EMULATOR_HOST;
  if (!host) {
    throw new Error('FIRESTORE_EMULATOR_HOST is not set; run through tests/rules/with-emulator.sh.');
  }
  const response = await fetch(`http://${host}/emulator/v1/projects/demo-rules-mutant:securityRules`, {
    method: 'PUT',
    body: JSON.stringify({ rules: { files: [{ content: rules }] } }),
  });
  if (!response.ok) {
    throw new Error(`mutant "${name}" does not compile: ${await response.text()}`);
  }
}

function applyMutant(rules, { name, find, replace }) {
  const occurrences = rules.split(find).length - 1;
  if (occurrences !== 1) {
    throw new Error(`mutant "${name}": expected the snippet once in firestore.rules, found ${occurrences}`);
  }
  return rules.replace(find, replace);
}

/** Runs the whole suite against a rules file; returns the failing test names. */
function runSuite(rulesFile) {
  const result = spawnSync(process.execPath, ['--test', '--test-reporter=tap', ...testFiles], {
    env: { ...process.env, FIRESTORE_RULES_FILE: rulesFile },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  // Every test sits one level inside a describe(), so failing tests are the indented "not ok" lines.
  const failures = [...result.stdout.matchAll(/^ {4}not ok \d+ - (.*)$/gm)].map((match) => match[1]);
  return { status: result.status, failures, output: result.stdout + result.stderr };
}

const rules = readFileSync(rulesPath, 'utf8');
const workDir = mkdtempSync(join(tmpdir(), 'rules-mutants-'));
let survivors = 0;
try {
  const baseline = runSuite(rulesPath);
  if (baseline.status !== 0) {
    console.log(baseline.output);
    console.log('FAIL: the suite does not pass on firestore.rules; fix that before checking mutants.');
    process.exit(1);
  }
  console.log('ok      firestore.rules passes the suite');

  for (const [index, mutant] of MUTANTS.entries()) {
    const mutantPath = join(workDir, `mutant-${index}.rules`);
    const mutantRules = applyMutant(rules, mutant);
    await assertCompiles(mutant.name, mutantRules);
    writeFileSync(mutantPath, mutantRules);
    const { status, failures } = runSuite(mutantPath);
    if (status === 0) {
      survivors += 1;
      console.log(`SURVIVED  ${mutant.name}`);
    } else {
      console.log(`killed  ${mutant.name} (${failures.length} failing, e.g. "${failures[0]}")`);
    }
  }
} finally {
  rmSync(workDir, { recursive: true, force: true });
}

console.log(`${MUTANTS.length - survivors}/${MUTANTS.length} mutants killed`);
process.exit(survivors === 0 ? 0 : 1);
