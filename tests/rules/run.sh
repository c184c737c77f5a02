#!/usr/bin/env bash
# Runs the Firestore security rules tests (tests/rules/*.test.mjs) on a fresh Firestore emulator.
# Usage: bash tests/rules/run.sh [extra `node --test` arguments, e.g. --test-name-pattern=users]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec bash tests/rules/with-emulator.sh node --test "$@" tests/rules/*.test.mjs
