"""`python -m tools.local up|demo|status`: the local environment (see docs/local.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.catalog import load_catalog

from .layout import build_layout


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "start the whole stack and keep it running until Ctrl-C or SIGTERM"),
        ("demo", "run the founder's journey against the running stack"),
        ("status", "show whether the stack is running and healthy"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument(
            "--state-dir", type=Path, help="runtime directory (env LOCAL_STATE_DIR; default .local)"
        )
        if name == "up":
            command.add_argument(
                "--port-base", type=int, help="first port of the block (env LOCAL_PORT_BASE; 8600)"
            )
            command.add_argument("--project", help="project id (env LOCAL_PROJECT_ID; demo-launchready)")
            for service in ("firestore", "pubsub", "auth", "sandbox"):
                command.add_argument(
                    f"--{service}-port",
                    type=int,
                    help=f"pin the {service} port (env LOCAL_{service.upper()}_PORT)",
                )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    catalog = load_catalog()
    if args.command == "up":
        from .stack import Stack, run_up

        layout = build_layout(
            catalog,
            port_base=args.port_base,
            state_dir=args.state_dir,
            project_id=args.project,
            firestore_port=args.firestore_port,
            pubsub_port=args.pubsub_port,
            auth_port=args.auth_port,
            sandbox_port=args.sandbox_port,
        )
        return run_up(Stack(catalog, layout))
    layout = build_layout(catalog, state_dir=args.state_dir)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(layout.endpoints_path)
    from .status import run_status

    return run_status(layout, catalog)


if __name__ == "__main__":
    sys.exit(main())
