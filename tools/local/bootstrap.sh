#!/usr/bin/env bash
# Prepares a fresh clone. Quiet when nothing needs doing; says once what it installed.
#
#   bootstrap.sh                  what `make up` needs: .venv from requirements/local.lock (function code,
#                                 local stack, provider sandbox), node_modules from package-lock.json
#                                 (firebase-tools for the Auth emulator), and checks for Java and gcloud's
#                                 Firestore and Pub/Sub emulators
#   bootstrap.sh --dev            the same, plus requirements/dev.lock on top in .venv (Pulumi SDKs,
#                                 pytest, ruff: `make test`, `make plan`)
#   bootstrap.sh --venv DIR LOCK  only the virtualenv DIR from the lock file LOCK, for a tool whose pins
#                                 conflict with .venv's (e.g. `--venv .venv-policy policy/requirements.lock`)
#
# An install is redone only when its lock file's content changed (a stamp in the virtualenv or in
# node_modules holds the lock's sha256). Installs print a progress line at least every 5 s.
# On a missing system tool it stops with the exact command that installs it.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"

python_bin="${PYTHON:-python3}"
PROGRESS_EVERY="${BOOTSTRAP_PROGRESS_SECONDS:-5}"
started=$SECONDS
log_dir=""
installed=()

fail() {
  printf '✗ %s\n' "$1" >&2
  shift
  for line in "$@"; do printf '  %s\n' "$line" >&2; done
  exit 1
}

lock_hash() { sha256sum "$1" | cut -d' ' -f1; }
# Up to date when the stamp holds the lock file's current hash.
up_to_date() { [[ -f "$1" && "$(cat "$1")" == "$(lock_hash "$2")" ]]; }

new_log() {
  [[ -n "$log_dir" ]] || log_dir="$(mktemp -d "${TMPDIR:-/tmp}/launchready-bootstrap.XXXXXX")"
  printf '%s/%s.log' "$log_dir" "$1"
}

# Waits for the background installs in `pending` ("pid|label|log|progress command" entries), printing one
# line every PROGRESS_EVERY seconds with each running install's latest activity; stops at the first failure.
wait_all() {
  local running entry pid label log progress line waited=0
  while ((${#pending[@]})); do
    running=()
    for entry in "${pending[@]}"; do
      IFS='|' read -r pid label log progress <<<"$entry"
      if kill -0 "$pid" 2>/dev/null; then
        running+=("$entry")
      elif ! wait "$pid"; then
        printf '✗ %s failed; last lines of %s:\n' "$label" "$log" >&2
        tail -n 15 "$log" | sed 's/^/    /' >&2
        exit 1
      fi
    done
    pending=("${running[@]+"${running[@]}"}")
    ((${#pending[@]})) || break
    sleep 1
    waited=$((waited + 1))
    if ((waited % PROGRESS_EVERY == 0)); then
      line=""
      for entry in "${pending[@]}"; do
        IFS='|' read -r pid label log progress <<<"$entry"
        line+="${line:+; }$label: $(eval "$progress" 2>/dev/null || true)"
      done
      printf '  … %3ds %s\n' "$((SECONDS - started))" "$line"
    fi
  done
}

# What pip is doing now: the last line of its log, shortened.
pip_activity() {
  local line
  line="$(grep -vE '^\s*$|^WARNING' "$1" | tail -n1 | sed 's/^ *//; s/ (from -r .*//' | cut -c1-70)"
  printf '%s' "${line:-resolving}"
}

check_python() {
  command -v "$python_bin" >/dev/null || fail "python3 is not installed" "sudo apt-get install -y python3 python3-venv"
  "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    fail "Python 3.11+ is required, found $("$python_bin" --version)" "sudo apt-get install -y python3.11 python3.11-venv"
}

# Starts installing LOCK into the virtualenv DIR in the background when its stamp is stale (a job
# for wait_all); nothing when up to date.
start_venv() {
  local dir="$1" lock="$2" stamp log
  [[ -f "$lock" ]] || fail "lock file $lock does not exist"
  stamp="$dir/.installed-$(basename "$lock")"
  up_to_date "$stamp" "$lock" && return 0
  check_python
  log="$(new_log "$(basename "$dir")-$(basename "$lock" .lock)")"
  (
    [[ -x "$dir/bin/python" ]] || "$python_bin" -m venv "$dir" || {
      echo "could not create $dir: sudo apt-get install -y python3-venv"
      exit 1
    }
    # The lock is complete (uv resolved it), so pip skips its own resolution (--no-deps); modules are
    # byte-compiled when first imported rather than all at install time (--no-compile).
    "$dir/bin/python" -m pip install --progress-bar off --disable-pip-version-check --no-deps --no-compile \
      -r "$lock" &&
      lock_hash "$lock" >"$stamp"
  ) >"$log" 2>&1 &
  installed+=("$dir from $lock")
  pending+=("$!|$dir ($lock)|$log|pip_activity $log")
}

# node_modules from package-lock.json. Optional dependencies are omitted (also in .npmrc): the only
# one with native code is re2, which firebase-tools' hosting emulator wants and which would be
# compiled with g++ for minutes; the Auth emulator does not use it.
start_npm() {
  local stamp=node_modules/.installed-package-lock log
  if up_to_date "$stamp" package-lock.json && [[ -x node_modules/.bin/firebase ]]; then
    return 0
  fi
  command -v npm >/dev/null || fail "Node.js 20+ and npm are not installed" "sudo apt-get install -y nodejs npm"
  log="$(new_log npm)"
  (
    npm ci --omit=optional --no-audit --no-fund --loglevel=error && lock_hash package-lock.json >"$stamp"
  ) >"$log" 2>&1 &
  installed+=("node_modules from package-lock.json")
  pending+=("$!|node_modules (npm ci)|$log|echo \$(find node_modules -maxdepth 3 -name package.json 2>/dev/null | wc -l) packages")
}

# Java and gcloud's emulator components: checked again only when java or gcloud changed.
check_system() {
  local stamp=.venv/.system-checked key java_major components sdk_major missing=() packages=()
  command -v java >/dev/null || fail "Java is not installed (the Firestore and Pub/Sub emulators run on the JVM)" \
    "sudo apt-get install -y openjdk-17-jre-headless"
  command -v gcloud >/dev/null || fail "gcloud is not installed" \
    "see https://cloud.google.com/sdk/docs/install#deb, or on Debian/Ubuntu:" \
    "sudo apt-get install -y google-cloud-cli google-cloud-cli-firestore-emulator google-cloud-cli-pubsub-emulator"
  key="$(readlink -f "$(command -v java)") $(readlink -f "$(command -v gcloud)")"
  [[ -f "$stamp" && "$(cat "$stamp")" == "$key" ]] && return 0
  java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  if [[ -z "$java_major" || "$java_major" -lt 11 ]]; then
    fail "Java 11+ is required, found: $(java -version 2>&1 | head -n1)" "sudo apt-get install -y openjdk-17-jre-headless"
  fi
  components="$(gcloud --version 2>/dev/null)"
  grep -q '^cloud-firestore-emulator ' <<<"$components" || missing+=(cloud-firestore-emulator)
  grep -q '^pubsub-emulator ' <<<"$components" || missing+=(pubsub-emulator)
  grep -q '^beta ' <<<"$components" || missing+=(beta)
  if ((${#missing[@]})); then
    # apt-installed gcloud cannot install components itself; it ships them as packages.
    if [[ "$(command -v gcloud)" == /usr/bin/gcloud ]]; then
      for component in "${missing[@]}"; do
        case "$component" in
          cloud-firestore-emulator) packages+=(google-cloud-cli-firestore-emulator) ;;
          pubsub-emulator) packages+=(google-cloud-cli-pubsub-emulator) ;;
          beta) packages+=(google-cloud-cli) ;; # the apt package carries the beta command group
        esac
      done
      fail "missing gcloud components: ${missing[*]}" "sudo apt-get install -y ${packages[*]}"
    fi
    fail "missing gcloud components: ${missing[*]}" "gcloud components install ${missing[*]}"
  fi
  # The Firestore emulator of gcloud 528.0.0 (tested) runs on Java 11+; it announces that later releases
  # need Java 21. Say so once, only when it applies.
  sdk_major="$(sed -n 's/^Google Cloud SDK \([0-9]*\).*/\1/p' <<<"$components")"
  if [[ -n "$sdk_major" && "$sdk_major" -gt 528 && "$java_major" -lt 21 ]]; then
    printf '! gcloud %s: its Firestore emulator may need Java 21 (found Java %s); if it does not start, install\n' \
      "$sdk_major" "$java_major"
    printf '  Java 21 (openjdk-21-jre-headless on Debian 13 / Ubuntu 24.04, or Temurin 21) and put it first on PATH\n'
  fi
  [[ -d .venv ]] && printf '%s\n' "$key" >"$stamp"
  return 0
}

finish() {
  ((${#installed[@]})) || return 0
  printf '✓ installed %s (%ds)\n' "$(joined "${installed[@]}")" "$((SECONDS - started))"
  [[ -z "$log_dir" ]] || rm -rf "$log_dir"
}

joined() { local IFS=,; local text="$*"; printf '%s' "${text//,/, }"; }

# Says once what is about to be installed (nothing when all is up to date).
announce() {
  local from="$1"
  ((${#installed[@]} > from)) || return 0
  printf '… installing %s (first run or a lock file changed)\n' "$(joined "${installed[@]:from}")"
}

main() {
  local mode=local
  case "${1:-}" in
    "") ;;
    --dev) mode=dev ;;
    --venv)
      [[ $# -eq 3 ]] || fail "usage: bootstrap.sh --venv DIR LOCK"
      mode=venv
      ;;
    *) fail "usage: bootstrap.sh [--dev | --venv DIR LOCK]" ;;
  esac
  pending=()
  if [[ "$mode" == venv ]]; then
    start_venv "$2" "$3"
    announce 0
    wait_all
    finish
    return 0
  fi
  check_system
  # pip and npm run side by side: they write to different trees.
  start_venv .venv requirements/local.lock
  start_npm
  announce 0
  wait_all
  if [[ "$mode" == dev ]]; then
    local before=${#installed[@]}
    start_venv .venv requirements/dev.lock
    announce "$before"
    wait_all
  fi
  finish
}

main "$@"
