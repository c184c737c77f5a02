#!/usr/bin/env bash
# Prepares a fresh clone for `make up`: the Python virtualenv from requirements.lock, the Node tools
# (firebase-tools for the Auth emulator) from package-lock.json, and the system tools the emulators
# need (gcloud with the Firestore and Pub/Sub emulator components, Java 11+).
#
# Idempotent and quick when nothing changed: .venv and node_modules are rebuilt only when their lock
# file is newer than the stamp written after the last successful install.
# On a missing system tool it stops with the exact command that installs it.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"

python_bin="${PYTHON:-python3}"
step=0
total=5

say() { step=$((step + 1)); printf '[%d/%d] %s\n' "$step" "$total" "$*"; }
ok() { printf '      ✓ %s\n' "$*"; }
fail() {
  printf '      ✗ %s\n' "$1" >&2
  shift
  for line in "$@"; do printf '        %s\n' "$line" >&2; done
  exit 1
}
# A stamp older than its lock file (or missing) means the install is out of date.
outdated() { [[ ! -f "$1" || "$2" -nt "$1" ]]; }

say "Python virtualenv (.venv from requirements.lock)"
if ! command -v "$python_bin" >/dev/null; then
  fail "python3 is not installed" "sudo apt-get install -y python3 python3-venv"
fi
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  fail "Python 3.11+ is required, found $("$python_bin" --version)" "sudo apt-get install -y python3.11 python3.11-venv"
fi
if outdated .venv/.installed requirements.lock; then
  [[ -x .venv/bin/python ]] || "$python_bin" -m venv .venv || fail "could not create .venv" \
    "sudo apt-get install -y python3-venv"
  .venv/bin/python -m pip install --quiet -r requirements.lock
  touch .venv/.installed
  ok "installed $(wc -l <requirements.lock | tr -d ' ') locked lines into .venv"
else
  ok ".venv is up to date"
fi

say "Node tools (node_modules from package-lock.json: firebase-tools for the Auth emulator)"
if ! command -v npm >/dev/null; then
  fail "Node.js 20+ and npm are not installed" "sudo apt-get install -y nodejs npm"
fi
if outdated node_modules/.installed package-lock.json || [[ ! -x node_modules/.bin/firebase ]]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.installed
  ok "npm ci done ($(node_modules/.bin/firebase --version) firebase-tools)"
else
  ok "node_modules is up to date"
fi

say "Java (the Firestore and Pub/Sub emulators run on the JVM)"
if ! command -v java >/dev/null; then
  fail "Java is not installed" "sudo apt-get install -y openjdk-17-jre-headless"
fi
java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
if [[ -z "$java_major" || "$java_major" -lt 11 ]]; then
  fail "Java 11+ is required, found: $(java -version 2>&1 | head -n1)" "sudo apt-get install -y openjdk-17-jre-headless"
fi
ok "Java $java_major"

say "Google Cloud CLI"
if ! command -v gcloud >/dev/null; then
  fail "gcloud is not installed" \
    "see https://cloud.google.com/sdk/docs/install#deb, or on Debian/Ubuntu:" \
    "sudo apt-get install -y google-cloud-cli"
fi
ok "$(gcloud --version 2>/dev/null | head -n1)"

say "Firestore and Pub/Sub emulator components"
components="$(gcloud --version 2>/dev/null)"
missing=()
grep -q '^cloud-firestore-emulator ' <<<"$components" || missing+=(cloud-firestore-emulator)
grep -q '^pubsub-emulator ' <<<"$components" || missing+=(pubsub-emulator)
grep -q '^beta ' <<<"$components" || missing+=(beta)
if ((${#missing[@]})); then
  # apt-installed gcloud cannot install components itself; it ships them as packages.
  if [[ "$(command -v gcloud)" == /usr/bin/gcloud ]]; then
    packages=()
    for component in "${missing[@]}"; do
      case "$component" in
        cloud-firestore-emulator) packages+=(google-cloud-cli-firestore-emulator) ;;
        pubsub-emulator) packages+=(google-cloud-cli-pubsub-emulator) ;;
        beta) packages+=(google-cloud-cli) ;;  # the apt package carries the beta command group
      esac
    done
    fail "missing gcloud components: ${missing[*]}" "sudo apt-get install -y ${packages[*]}"
  fi
  fail "missing gcloud components: ${missing[*]}" "gcloud components install ${missing[*]}"
fi
ok "cloud-firestore-emulator $(awk '/^cloud-firestore-emulator /{print $2}' <<<"$components"), pubsub-emulator $(awk '/^pubsub-emulator /{print $2}' <<<"$components")"

echo "Ready: \`make up\` starts the local stack."
