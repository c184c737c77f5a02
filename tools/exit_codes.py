"""The exit codes of every command of `python -m tools` (and so of its make targets): one meaning each.

docs/cli.md shows `markdown_table()`; a test keeps the two equal.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    ENVIRONMENT = 3
    LEFTOVERS = 4
    WAITING = 5
    DEAD_LETTERS = 6
    NOT_ALL_CHECKED = 7
    WITHHELD = 8
    INTERRUPTED = 130


MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "done: everything the command checks passed",
    ExitCode.FAILED: (
        "the command ran and found a problem: a failed step, test or health check, a mandatory policy "
        "violation, an unjustified Checkov failure, a secret in the tree or without a value, a failed "
        "`pulumi up`, a destructive change not acknowledged"
    ),
    ExitCode.USAGE: (
        "bad arguments or input files (stack file, plan, pack config, provider contract violations), or a "
        "refusal (a production stack or a live-mode key for the smoke test, a second `make up` on the same "
        "state directory): nothing was changed"
    ),
    ExitCode.ENVIRONMENT: (
        "what the command talks to is missing or refuses it: credentials, permission, project, network, "
        "the Pulumi CLI, or the local stack is not running (`make up`); the one line says what to fix"
    ),
    ExitCode.LEFTOVERS: "an earlier `make up` left processes or ports behind (`make status` lists them)",
    ExitCode.WAITING: (
        "waiting on something outside: the local stack is still starting, or a deploy phase waits for "
        "secret values or a certificate; rerun later"
    ),
    ExitCode.DEAD_LETTERS: "the local stack is healthy but messages wait in a dead-letter subscription",
    ExitCode.NOT_ALL_CHECKED: (
        "every step passed but some outcomes could not be read (the lines say which): not a pass"
    ),
    ExitCode.WITHHELD: "the output would have shown a credential-shaped string: nothing written or printed",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C); what was done before stays done",
}


def markdown_table() -> str:
    """The table docs/cli.md shows: code, name, meaning."""
    rows = ["| Code | Name | Meaning |", "|---|---|---|"]
    rows += [f"| {code.value} | `{code.name}` | {MEANING[code]} |" for code in ExitCode]
    return "\n".join(rows)
