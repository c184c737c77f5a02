#!/usr/bin/env bash
# `make test-founder`: the README's steps as a founder runs them, on the hand-written configuration of
# another app (tests/founder/Pulumi.<stack>.yaml) put in place of the template's stack files.
#
#   plan, policy and scan per stack; the program diff against HEAD (the template: a first configuration);
#   clone-env of staging into a review stack and check-env on it; then the whole `make test`.
#
# The template's stack files are put back, and the cloned stack file removed, however it ends.
set -euo pipefail
cd "$(dirname "$0")/../.."

stacks=(staging prod pr)
backup="$(mktemp -d)"
restore() {
  for stack in "${stacks[@]}"; do cp "$backup/Pulumi.$stack.yaml" "Pulumi.$stack.yaml"; done
  rm -f Pulumi.founder-review.yaml
  rm -rf "$backup"
}
for stack in "${stacks[@]}"; do cp "Pulumi.$stack.yaml" "$backup/"; done
trap restore EXIT
for stack in "${stacks[@]}"; do cp "tests/founder/Pulumi.$stack.yaml" "Pulumi.$stack.yaml"; done

step() { echo; echo "==> founder: $*"; "$@"; }
for stack in "${stacks[@]}"; do
  step make plan STACK="$stack"
  step make policy STACK="$stack"
  step make scan STACK="$stack"
done
step make diff BASE=HEAD
step make clone-env FROM=staging TO=founder-review HOST_PREFIX=review
step make check-env STACK=founder-review AGAINST=staging
rm -f Pulumi.founder-review.yaml
step make test
