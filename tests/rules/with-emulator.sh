#!/usr/bin/env bash
# Runs a command against a fresh gcloud Firestore emulator, with FIRESTORE_EMULATOR_HOST set.
#
# The emulator runs in its own process group on a free 127.0.0.1 port and is always stopped on exit,
# whatever happens to the command. Exit code: the command's.
# Usage: bash tests/rules/with-emulator.sh <command> [args...]   (run from anywhere; cwd = repo root)
set -euo pipefail

if (($# == 0)); then
  echo "usage: $0 <command> [args...]" >&2
  exit 2
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"

startup_timeout_seconds="${RULES_EMULATOR_STARTUP_TIMEOUT:-90}"
emulator_log="$(mktemp -t firestore-rules-emulator.XXXXXX.log)"
emulator_pgid=""
command_pid=""

stop_emulator() {
  if [[ -n "$emulator_pgid" ]] && kill -0 -- "-$emulator_pgid" 2>/dev/null; then
    kill -TERM -- "-$emulator_pgid" 2>/dev/null || true
    # The JVM usually exits within a second or two; escalate if it lingers.
    for _ in $(seq 1 50); do
      kill -0 -- "-$emulator_pgid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$emulator_pgid" 2>/dev/null || true
  fi
  rm -f "$emulator_log"
}
# On INT/TERM stop the command too (it shares our process group, so a TERM sent to this script
# alone would otherwise leave it running), then let the EXIT trap stop the emulator.
stop_command() {
  [[ -n "$command_pid" ]] && kill -TERM "$command_pid" 2>/dev/null
  return 0
}
trap stop_emulator EXIT
trap 'stop_command; exit 130' INT
trap 'stop_command; exit 143' TERM

# Ask the OS for a free port: bind to port 0, read it back, release it.
port="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close();});")"

# Without job control a background job is not a process group leader, so setsid(1) does not fork
# and $! is both the pid and the pgid of the emulator's new session.
setsid gcloud emulators firestore start --host-port="127.0.0.1:$port" >"$emulator_log" 2>&1 &
emulator_pgid=$!

deadline=$((SECONDS + startup_timeout_seconds))
until [[ "$(curl -s --max-time 2 "http://127.0.0.1:$port/" || true)" == Ok* ]]; do
  if ! kill -0 "$emulator_pgid" 2>/dev/null || ((SECONDS >= deadline)); then
    echo "Firestore emulator did not become ready on 127.0.0.1:$port; its output:" >&2
    cat "$emulator_log" >&2
    exit 1
  fi
  sleep 0.5
done

export FIRESTORE_EMULATOR_HOST="127.0.0.1:$port"
echo "Firestore emulator ready on $FIRESTORE_EMULATOR_HOST"

# Run in the background and wait, so a signal to this script is handled at once, not after the command.
"$@" &
command_pid=$!
set +e
wait "$command_pid"
status=$?
set -e
exit "$status"
