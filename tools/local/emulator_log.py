"""Filter for the Firestore emulator's output: each expected already-exists trace becomes one line.

Every other line passes through unchanged (docs/tools.md).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator

PREFIX = r"(?:\[firestore\] )?"
ON_ERROR = re.compile(PREFIX + r".*WrappedStreamObserver onError\s*$")
ALREADY_EXISTS = re.compile(PREFIX + r"WARNING: Operation failed: entity already exists: .*path=([^}]*)\}")
# The trace's lines, and the blank line the emulator ends it with.
TRACE = re.compile(PREFIX + r"(\s+at |\s+\.\.\. \d+ more|Caused by: |com\.google\.|io\.grpc\.|java\.|\s*$)")
JAVA_21 = re.compile(r"^WARNING: Cloud Firestore Emulator support for Java JRE version .* version 21")
JAVA_NOTE = ("note: the Firestore emulator of this gcloud runs on Java 11 or later; gcloud releases after "
             "528.0.0 need Java 21 (README, Prerequisites)")


def filtered(lines: Iterable[str]) -> Iterator[str]:
    """The emulator's lines (without newlines) with expected already-exists traces folded to one line."""
    held: str | None = None
    in_trace = False
    for line in lines:
        if in_trace:
            if TRACE.match(line):
                continue
            in_trace = False
        if held is not None:
            match = ALREADY_EXISTS.match(line)
            if match:
                yield (f"[firestore] create refused, the document already exists (expected: a ledger claim "
                       f"of a duplicate, or a replay): {match.group(1)}")
                held, in_trace = None, True
                continue
            yield held
            held = None
        if ON_ERROR.match(line):
            held = line
        elif JAVA_21.match(line):
            yield JAVA_NOTE
        else:
            yield line
    if held is not None:
        yield held


def main() -> None:
    for line in filtered(raw.rstrip("\n") for raw in sys.stdin):
        print(line, flush=True)


if __name__ == "__main__":
    main()
