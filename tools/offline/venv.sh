#!/usr/bin/env bash
# Creates or refreshes an extra virtualenv from a lock file, idempotently:
#   tools/offline/venv.sh .venv-policy policy/requirements.lock
# The venv is rebuilt only when the lock file is newer than the stamp written after the last
# successful install (the same rule as tools/local/bootstrap.sh for .venv).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 <venv dir> <lock file>" >&2
  exit 2
fi
venv="$1"
lock="$2"
python_bin="${PYTHON:-python3}"
[[ -f "$lock" ]] || { echo "lock file not found: $lock" >&2; exit 2; }

stamp="$venv/.installed"
if [[ -f "$stamp" && ! "$lock" -nt "$stamp" ]]; then
  exit 0
fi
echo "==> $venv from $lock"
[[ -x "$venv/bin/python" ]] || "$python_bin" -m venv "$venv" || {
  echo "could not create $venv: sudo apt-get install -y python3-venv" >&2
  exit 1
}
"$venv/bin/python" -m pip install --quiet --no-deps -r "$lock"
touch "$stamp"
