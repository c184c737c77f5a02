"""`python -m tools bench ...`: the benchmarks, each reporting medians and p95."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tools.cli.common import DEFAULT_ENDPOINTS, Endpoints, done

app = typer.Typer(
    help="Benchmarks: medians and p95 of the local stack and the offline tools.", no_args_is_help=True
)


Runs = Annotated[int, typer.Option(min=1, help="measured runs")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="also write the results as JSON to this file")]
StartPrivate = Annotated[bool, typer.Option("--start", help="start a private stack for the run")]


@app.command("startup")
def bench_startup(runs: Runs = 3) -> None:
    """Cold and warm start-to-ready of `make up`."""
    from tools.bench.startup import run

    done(run(runs))


@app.command("pipeline")
def bench_pipeline(
    endpoints: Endpoints = DEFAULT_ENDPOINTS,
    start: StartPrivate = False,
    runs: Runs = 20,
    handler_requests: Annotated[
        int, typer.Option(min=1, help="sequential webhooks for the handler latency")
    ] = 200,
    json_out: JsonOut = None,
) -> None:
    """How fast the event chain runs on the local stack."""
    from tools.bench.pipeline import run

    done(run(endpoints, start=start, runs=runs, handler_requests=handler_requests, json_out=json_out))


@app.command("webhook")
def bench_webhook(
    requests: Annotated[
        int, typer.Option(min=20, help="measured deliveries to each handler (a p95 needs 20)")
    ] = 300,
    warmup: Annotated[int, typer.Option(min=0, help="unmeasured deliveries to each first")] = 30,
    burst: Annotated[
        int, typer.Option(min=0, help="then N more deliveries to stripe_webhook at once (0: none)")
    ] = 0,
    concurrency: Annotated[int, typer.Option(min=1, help="requests in flight in a burst")] = 40,
    json_out: JsonOut = None,
) -> None:
    """stripe_webhook against its floor (signature, one write, one publish), medians and p95."""
    from tools.bench.webhook import run

    done(
        run(deliveries=requests, warmup=warmup, burst_size=burst, concurrency=concurrency, json_out=json_out)
    )


@app.command("console")
def bench_console(
    endpoints: Endpoints = DEFAULT_ENDPOINTS,
    start: StartPrivate = False,
    events: Annotated[int, typer.Option(min=1, help="ledger events to seed")] = 10_000,
    runs: Runs = 30,
    json_out: JsonOut = None,
) -> None:
    """Ops console page loads with a large ledger."""
    from tools.bench.console import run

    done(run(endpoints, start=start, events=events, runs=runs, json_out=json_out))


@app.command("fresh-start")
def bench_fresh_start(
    runs: Runs = 3,
    verbose: Annotated[bool, typer.Option("--verbose", help="print each run's `make up` output")] = False,
) -> None:
    """A fresh clone with empty package caches, timed to a ready `make up`."""
    from tools.bench.fresh_start import run

    done(run(runs, verbose=verbose))


@app.command("cold-start")
def bench_cold_start(
    runs: Annotated[
        int, typer.Option(min=20, help="measured runs of each kind per function (a p95 needs 20)")
    ] = 20,
    warmup: Annotated[
        int, typer.Option(min=1, help="unmeasured rounds first (they write bytecode caches)")
    ] = 1,
    function: Annotated[
        list[str] | None, typer.Option(metavar="NAME", help="only this function (repeatable)")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="also start each function from this checkout's functions_src")
    ] = None,
    json_out: JsonOut = None,
) -> None:
    """Each function's cold start (its archive, `create_app`) against its floor, paired in one interpreter."""
    from tools.bench.cold_start import run

    done(run(runs, warmup, function, baseline, json_out))


@app.command("diff")
def bench_diff(
    base: Annotated[str, typer.Option(help="git ref of the base")],
    runs: Runs = 5,
) -> None:
    """`diff --no-policy` cold (base evaluated) and warm (base from cache)."""
    from tools.bench.diff import run

    done(run(base, runs))
