"""The commands that act on a deployed environment: preflight, preview, deploy, secrets, replay, the ops
role."""

from __future__ import annotations

from typing import Annotated

import typer

from tools.cli.common import DEFAULT_ENDPOINTS, Endpoints, Stack, done

app = typer.Typer()
secrets = typer.Typer(help="Secret Manager values the functions read.", no_args_is_help=True)
app.add_typer(secrets, name="secrets")


@app.command()
def preflight(stack: Stack) -> None:
    """Read-only: what the live org policies and project would refuse in build/plan-<stack>.json."""
    from tools.ops.preflight.check import run

    done(run(stack))


@app.command()
def preview(stack: Stack) -> None:
    """`pulumi preview --diff` of the next deploy phase, once the CLI, login and credentials are in place."""
    from tools.ops.deploy import run
    from tools.ops.pulumi_cli import ready

    done(ready(stack) or run(stack, preview=True))


@app.command()
def deploy(stack: Stack) -> None:
    """`pulumi up` in first-deploy phases, idempotent, once the CLI, login and credentials are in place."""
    from tools.ops.deploy import run
    from tools.ops.pulumi_cli import ready

    done(ready(stack) or run(stack))


SecretsProject = Annotated[
    str | None, typer.Option(help="GCP project id (default: launchready:projectId of the stack)")
]
OnlySecret = Annotated[str | None, typer.Option(metavar="NAME", help="just this secret")]


@secrets.command("add")
def secrets_add(stack: Stack, project: SecretsProject = None, only: OnlySecret = None) -> None:
    """Add a version to each declared secret, from the environment or a hidden prompt."""
    from tools.ops.secrets_cli import run

    done(run("add", stack, project=project, only=only))


@secrets.command("check")
def secrets_check(stack: Stack, project: SecretsProject = None, only: OnlySecret = None) -> None:
    """List the declared secrets; exit 1 when one has no enabled version."""
    from tools.ops.secrets_cli import run

    done(run("check", stack, project=project, only=only))


@app.command("replay-dlq")
def replay_dlq(
    topic: Annotated[str, typer.Option(help="the topic whose dead letters to replay")],
    project: Annotated[str | None, typer.Option(help="GCP project (default: GOOGLE_CLOUD_PROJECT)")] = None,
    local: Annotated[
        bool, typer.Option("--local", help="replay on the running `make up` (its emulator and project)")
    ] = False,
    endpoints: Endpoints = DEFAULT_ENDPOINTS,
    max_messages: Annotated[
        int | None, typer.Option("--max", min=1, help="replay at most N messages")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list the messages without replaying them")
    ] = False,
) -> None:
    """Republish a topic's dead-lettered messages to the topic."""
    from tools.ops.replay_dlq import run

    done(
        run(
            topic,
            project=project,
            local=endpoints if local else None,
            max_messages=max_messages,
            dry_run=dry_run,
        )
    )


@app.command("grant-ops")
def grant_ops(
    email: Annotated[str, typer.Option(help="the user's sign-in email")],
    stack: Annotated[
        str | None, typer.Option(help="the stack whose project (launchready:projectId) to act on")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="the Auth emulator of the running `make up`")
    ] = False,
    endpoints: Endpoints = DEFAULT_ENDPOINTS,
    revoke: Annotated[bool, typer.Option("--revoke", help="remove the role instead")] = False,
) -> None:
    """Give a user the ops console role, or take it back."""
    from tools.ops.grant_ops import run

    if (stack is None) == (not local):
        raise typer.BadParameter("pass exactly one of --stack and --local", param_hint="--stack/--local")
    done(run(email, stack=stack, local=endpoints if local else None, revoke=revoke))
