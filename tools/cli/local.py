"""The commands of the local stack: `up`, `demo`, `status`, `smoke` and the provider `sandbox`."""

from __future__ import annotations

from typing import Annotated

import typer

from tools.cli.common import DEFAULT_ENDPOINTS, Endpoints, StateDir, done

app = typer.Typer()


@app.command()
def up(
    state_dir: StateDir = None,
    port_base: Annotated[
        int | None, typer.Option(help="first port of the block (env LOCAL_PORT_BASE; 8600)")
    ] = None,
    project: Annotated[
        str | None, typer.Option(help="project id (env LOCAL_PROJECT_ID; demo-launchready)")
    ] = None,
    firestore_port: Annotated[int | None, typer.Option(help="pin the Firestore emulator's port")] = None,
    pubsub_port: Annotated[int | None, typer.Option(help="pin the Pub/Sub emulator's port")] = None,
    auth_port: Annotated[int | None, typer.Option(help="pin the Auth emulator's port")] = None,
    sandbox_port: Annotated[int | None, typer.Option(help="pin the provider sandbox's port")] = None,
) -> None:
    """Start the whole stack on the emulators and keep it running until Ctrl-C or SIGTERM."""
    from tools.local.layout import build_layout
    from tools.local.stack import Stack as LocalStack
    from tools.local.stack import run_up
    from tools.project_files import read_catalog

    catalog = read_catalog()
    layout = build_layout(
        catalog,
        port_base=port_base,
        state_dir=state_dir,
        project_id=project,
        firestore_port=firestore_port,
        pubsub_port=pubsub_port,
        auth_port=auth_port,
        sandbox_port=sandbox_port,
    )
    done(run_up(LocalStack(catalog, layout)))


@app.command()
def demo(state_dir: StateDir = None) -> None:
    """Run the founder's journey against the running stack, each step timed."""
    from tools.local.demo import run_demo
    from tools.local.layout import build_layout
    from tools.project_files import read_catalog

    done(run_demo(build_layout(read_catalog(), state_dir=state_dir).endpoints_path))


@app.command()
def status(state_dir: StateDir = None) -> None:
    """Whether the local stack is running and every part answers."""
    from tools.local.layout import build_layout
    from tools.local.status import run_status
    from tools.project_files import read_catalog

    catalog = read_catalog()
    done(run_status(build_layout(catalog, state_dir=state_dir), catalog))


@app.command()
def smoke(
    stack: Annotated[
        str | None, typer.Option(help="a deployed stack; default: the running `make up`")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="the API's public base URL instead of the stack outputs")
    ] = None,
    allow_production: Annotated[
        bool, typer.Option("--allow-production", help="run against a production stack")
    ] = False,
    endpoints: Endpoints = DEFAULT_ENDPOINTS,
    test_inbox: Annotated[
        str | None, typer.Option(help="the test user's mailbox; each run adds a +label")
    ] = None,
) -> None:
    """The demo's journey as a smoke test, on the local stack or a deployed one."""
    from tools.ops.smoke import run

    done(
        run(
            stack=stack,
            base_url=base_url,
            allow_production=allow_production,
            endpoints=endpoints,
            test_inbox=test_inbox,
        )
    )


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0 picks a free one)")] = 8790,
    verbose: Annotated[bool, typer.Option("--verbose", help="log every request to stderr")] = False,
) -> None:
    """Serve the provider sandbox (Stripe, HubSpot, Zendesk, Resend, App Store, Google Play) until stopped."""
    from tools.sandbox.server import serve

    done(serve(port, verbose=verbose))
