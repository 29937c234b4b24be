"""The `journey` command: a thin layer over the library; the core never imports it."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from channels import PolicyError, load_policy
from engine.cli.consent import consent_app
from engine.cli.forecast import forecast_command
from engine.cli.graphs import RenderError, render, step_order, to_dot, to_mermaid
from engine.cli.help import App
from engine.cli.preview import preview_command
from engine.cli.profiles import profiles_app
from engine.cli.report import print_report, simulate_progress
from engine.cli.schema import schema_text
from engine.clock import SystemClock
from engine.compiler import journey_files, load_file, load_paths
from engine.errors import BenchError, EventError, InputError, JourneyDefinitionError, StoreError
from engine.events import parse_time
from engine.simulator import parse_events, parse_profiles, read_jsonl
from engine.simulator import simulate as run_simulation

if TYPE_CHECKING:
    from engine.cli.serve import ServeOptions

app = App(
    name="journey", help="Journey orchestration: validate, graph, simulate and serve journeys.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
app.add_typer(consent_app)  # journey consent export
app.add_typer(profiles_app)  # journey profiles import
app.command("preview")(preview_command)
app.command("forecast")(forecast_command)
log = logging.getLogger("journey.serve")


def _print_version(asked: bool) -> None:
    if asked:
        try:
            number = installed_version("journey-engine")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown"
        typer.echo(f"journey-engine {number}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="print the version and exit"),
) -> None:
    pass


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"
    png = "png"


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(str(exc), err=True)
    return typer.Exit(1)


@app.command()
def validate(paths: list[Path] = typer.Argument(..., metavar="PATH", help="journey files, or folders: every "
                                                "*.yaml and *.yml under them, subfolders included")) -> None:
    """Check journey files; print `file:line: message` for every problem and exit 1."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise _fail(FileNotFoundError(f"{missing[0]}: no such file or folder"))
    if not journey_files(list(paths)):
        raise _fail(FileNotFoundError(f"no journey files (*.yaml, *.yml) under {', '.join(map(str, paths))}"))
    try:
        journeys = load_paths(list(paths))
    except JourneyDefinitionError as exc:
        raise _fail(exc) from None
    for journey in journeys:
        count = len(journey.steps)
        typer.echo(f"{journey.source}: ok ({journey.id}, {count} step{'' if count == 1 else 's'})")
        for warning in journey.warnings:
            typer.echo(f"{warning.file}:{warning.line}: warning: {warning.message}", err=True)


@app.command()
def graph(
    file: Path = typer.Argument(..., metavar="FILE", help="a journey file"),
    format: GraphFormat = typer.Option(GraphFormat.mermaid, "--format", metavar="FORMAT",
                                       help="mermaid or dot (text); svg or png (through Graphviz's dot, with -o)"),
    out: Path | None = typer.Option(None, "-o", "--output", metavar="FILE",
                                    help="write to this file instead of stdout"),
) -> None:
    """Print the journey's graph as Mermaid or Graphviz dot, or render it to SVG or PNG with Graphviz."""
    image = format in (GraphFormat.svg, GraphFormat.png)
    if image and out is None:
        raise typer.BadParameter(f"--format {format.value} writes a file: add -o FILE", param_hint="-o")
    try:
        journey = load_file(file)
    except JourneyDefinitionError as exc:
        raise _fail(exc) from None
    text = to_mermaid(journey) if format is GraphFormat.mermaid else to_dot(journey)
    try:
        if image and out is not None:
            render(text, format.value, out)
        elif out is not None:
            out.write_text(text, encoding="utf-8")
        else:
            typer.echo(text, nl=False)
    except RenderError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail(OSError(f"journey graph: {exc.filename}: {exc.strerror}")) from None


@app.command()
def schema() -> None:
    """Print the JSON Schema of journey files, for editors (yaml-language-server)."""
    typer.echo(schema_text(), nl=False)


@app.command()
def simulate(
    file: Path = typer.Argument(..., metavar="FILE", help="a journey file"),
    events: Path | None = typer.Option(None, "--events", metavar="FILE",
                                       help="events, JSON Lines (optional for a journey "
                                       "entered by audience runs)"),
    profiles: Path | None = typer.Option(None, "--profiles", metavar="FILE", help="profiles, JSON Lines"),
    start: str | None = typer.Option(None, "--start", metavar="T", help="audience runs from T (RFC 3339; default: "
                                     "an at trigger's instant, else the first event, else now)"),
    until: str | None = typer.Option(None, "--until", metavar="T", help="audience runs up to T (default: the "
                                     "first run only)"),
    policy: Path | None = typer.Option(None, "--policy", metavar="FILE", help="policy YAML merged over the default"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
    summary: bool = typer.Option(False, "--summary", help="only the totals, the funnel and per-user outcomes"),
    limit: int | None = typer.Option(None, "--limit", min=0, metavar="N",
                                     help="at most N rows in each list (messages, skipped sends, users)"),
) -> None:
    """Dry-run a journey on a virtual clock: no waiting, no provider called, nothing stored."""
    if as_json and (summary or limit is not None):
        raise typer.BadParameter("--summary and --limit shape the tables; --json prints the whole document",
                                 param_hint="--json")
    try:
        journey = load_file(file)
        chosen = load_policy(policy)
        if events is None and journey.definition.trigger.kind == "event":
            raise InputError(f"--events: required for {journey.id}, which an event starts (trigger.event)")
        event_list = parse_events((f"{events}:{n}", row) for n, row in read_jsonl(events)) if events else []
        first = _instant(start, "--start") or (event_list[0].timestamp if event_list else SystemClock().now())
        profile_list = parse_profiles(((f"{profiles}:{n}", row) for n, row in read_jsonl(profiles)), first) \
            if profiles else []
        dry_run = partial(run_simulation, journey, event_list, profile_list, chosen, start=_instant(start, "--start"),
                          until=_instant(until, "--until"), now=SystemClock().now())
        if as_json:
            typer.echo(json.dumps(dry_run(), indent=2, ensure_ascii=False))
            return
        with simulate_progress() as progress:
            result = dry_run(progress=progress)
    except (JourneyDefinitionError, PolicyError, InputError) as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail(OSError(f"{exc.filename}: {exc.strerror}")) from None
    print_report(result, order=step_order(journey), limit=limit, summary_only=summary)


def _instant(value: str | None, option: str) -> datetime | None:
    try:
        return parse_time(value, option) if value is not None else None
    except EventError as exc:
        raise InputError(str(exc)) from None


LOOPBACK = ("127.0.0.1", "localhost", "::1")
TRUE = ("1", "true", "yes")  # JOURNEY_METRICS_PUBLIC's values that open /metrics


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


@app.command()
def serve(
    db: str = typer.Option("sqlite:///journey.db", "--db", metavar="URL",
                           help="database URL (sqlite:///file or postgresql+psycopg://...)"),
    journeys: Path = typer.Option(Path("journeys"), "--journeys", metavar="DIR", help="folder of journey files"),
    host: str = typer.Option("127.0.0.1", "--host", metavar="HOST", help="the address to listen on"),
    port: int = typer.Option(8000, "--port", metavar="PORT", help="the port to listen on"),
    policy: Path | None = typer.Option(None, "--policy", metavar="FILE", help="policy YAML merged over the default"),
    outbox: Path = typer.Option(Path("outbox.jsonl"), "--outbox", metavar="FILE",
                                help="where messages go with no providers file"),
    providers: Path | None = typer.Option(None, "--providers", metavar="FILE",
                                          help="providers YAML (SMTP, Twilio, FCM, webhook); "
                                          "secrets as ${ENV_VAR}"),
    log_format: LogFormat = typer.Option(LogFormat.text, "--log-format", metavar="text|json",
                                         help="text, or json: one object a line"),
    log_level: LogLevel = typer.Option(LogLevel.info, "--log-level", metavar="LEVEL",
                                       help="info: a line per batch, decision, send, "
                                       "sweep with work, request"),
    workers: int = typer.Option(1, "--workers", min=1, metavar="K",
                                help="worker processes behind this port, sharing the "
                                "database's users by partition (PostgreSQL)"),
) -> None:
    """HTTP API, timer sweeps and outbox dispatch. Keys: JOURNEY_API_KEYS (comma-separated)."""
    from channels.providers.config import ProvidersError
    from engine.cli.serve import build, run, worker_process
    from engine.errors import StoreError
    from engine.host.partitions import default_worker_id
    from engine.host.workers import Workers, listening_socket
    from engine.http.multiprocess import mark_dead, metrics_folder

    options = _serve_options(db, journeys, host, port, policy, outbox, providers, log_format, log_level)
    if host not in LOOPBACK and not options.keys:
        raise _fail(ValueError(f"refusing to listen on {host} without API keys: set JOURNEY_API_KEYS"))
    if not journeys.exists():
        raise _fail(FileNotFoundError(f"{journeys}: no such folder of journeys; journey serve reads ./journeys by "
                                      "default: run it where that folder is, or point at yours with --journeys DIR"))
    if workers > 1 and not db.startswith("postgresql"):
        raise _fail(ValueError(f"--workers {workers}: several workers share a PostgreSQL database "
                               "(--db postgresql+psycopg://...); SQLite has one writer: run one worker"))
    try:
        server = build(options, default_worker_id(port, base=options.worker_id))  # workers check the same first
    except (JourneyDefinitionError, PolicyError, ProvidersError, StoreError) as exc:
        raise _fail(exc) from None
    if workers == 1:
        run(server, options)
        return
    server.stop()
    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        raise _fail(OSError(f"{host}:{port}: {exc.strerror}")) from None
    with metrics_folder():  # the workers' /metrics add up every worker's totals
        code = Workers(workers, worker_process, sock, (options,), died=mark_dead).run()
    raise typer.Exit(code)


def _serve_options(db: str, journeys: Path, host: str, port: int, policy: Path | None, outbox: Path,
                   providers: Path | None, log_format: LogFormat, log_level: LogLevel) -> ServeOptions:
    """`journey serve`'s options: its command line and the environment, read here once and passed
    down to every worker (nothing below the CLI reads the environment)."""
    from engine.cli.serve import ServeOptions
    from engine.http.app import MAX_BODY, MAX_BULK_BODY

    keys = frozenset(k.strip() for k in os.environ.get("JOURNEY_API_KEYS", "").split(",") if k.strip())
    return ServeOptions(db, journeys, host, port, policy, outbox, providers, log_format.value, log_level.value,
                        keys, _seconds("JOURNEY_OUTBOX_LEASE_SECONDS", "60", 1, 3600),
                        _seconds("JOURNEY_PARTITION_LEASE_SECONDS", "10", 2, 300),
                        _seconds("JOURNEY_STUCK_TURN_SECONDS", "10", 1, 3600),
                        _bytes("JOURNEY_MAX_BODY_BYTES", MAX_BODY),
                        _bytes("JOURNEY_MAX_BULK_BODY_BYTES", MAX_BULK_BODY),
                        worker_id=os.environ.get("JOURNEY_WORKER_ID", "").strip() or None,
                        metrics_public=os.environ.get("JOURNEY_METRICS_PUBLIC", "").strip().lower() in TRUE,
                        user_key_secret=os.environ.get("JOURNEY_USER_KEY_SECRET") or None,
                        public_url=os.environ.get("JOURNEY_PUBLIC_URL", "").strip())


def _seconds(name: str, default: str, low: float, high: float) -> timedelta:
    """A duration in seconds from the environment: JOURNEY_OUTBOX_LEASE_SECONDS, how long a send
    interrupted by a crash stays claimed before a restarted server takes it over (60 s);
    JOURNEY_PARTITION_LEASE_SECONDS, how long a dead worker keeps its partitions (10 s);
    JOURNEY_STUCK_TURN_SECONDS, how long one turn of the engine may last before /healthz says 503 (10 s)."""
    value = os.environ.get(name, default)
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not low <= seconds <= high:
        raise _fail(ValueError(f"{name}={value!r}: a number of seconds from {low:g} to {high:g}"))
    return timedelta(seconds=seconds)


def _bytes(name: str, default: int) -> int:
    """A request body limit from the environment: JOURNEY_MAX_BODY_BYTES for every route but
    `POST /v1/profiles` (1 MiB), JOURNEY_MAX_BULK_BODY_BYTES for that one (32 MiB)."""
    value = os.environ.get(name, str(default)).strip()
    if not value.isdecimal() or not 1024 <= int(value) <= 2**31:
        raise _fail(ValueError(f"{name}={value!r}: a whole number of bytes from 1024 to {2**31}"))
    return int(value)


class Via(StrEnum):
    python = "python"
    http = "http"


@app.command()
def bench(
    users: int = typer.Option(10_000, "--users", min=10, metavar="N", help="N users in the W1 workload"),
    timeout_seconds: float = typer.Option(2.0, "--timeout-seconds", metavar="T",
                                          help="T: how long to wait for an open (> 0.5)"),
    db: str | None = typer.Option(None, "--db", metavar="URL", help="database URL (default: a fresh SQLite file)"),
    via: Via = typer.Option(Via.python, "--via", metavar="python|http",
                            help="python: Engine API in batches; http: journey serve"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    batch: int | None = typer.Option(None, "--batch", min=1, metavar="B",
                                     help="events per call (default: 1000 python, 500 http)"),
    workers: int | None = typer.Option(None, "--workers", min=1, metavar="K",
                                       help="run `journey serve --workers K` on a "
                                       "PostgreSQL --db and measure it (default: one server in this process)"),
    audience: int | None = typer.Option(None, "--audience", min=2, metavar="N", help="instead of W1: an audience "
                                        "run over N profiles (half matching), with another journey's 2 s timers "
                                        "coming due meanwhile"),
) -> None:
    """Measure the reference workload W1 (push, then SMS on ignore), or an audience run.

    W1 runs against the real store and scheduler. With --audience N, an audience run over N
    profiles instead: entry rate, peak RSS, concurrent timer lateness."""
    from datetime import timedelta

    from engine.bench.runner import run_bench
    from engine.bench.workload import OPEN_DELAY
    from engine.cli.report import bench_progress, print_bench
    from engine.host.server import tune_runtime

    if audience is not None:
        _bench_audience(audience, db, as_json)
        return
    if timeout_seconds <= OPEN_DELAY.total_seconds():
        delay = OPEN_DELAY.total_seconds()
        raise _fail(ValueError(f"--timeout-seconds {timeout_seconds:g}: W1's openers open {delay:g} s after their "
                               "push, so T must be longer than that"))
    if workers is not None and not (db or "").startswith("postgresql"):
        raise _fail(ValueError(f"--workers {workers}: workers share a PostgreSQL database: add "
                               "--db postgresql+psycopg://..."))
    tune_runtime()

    try:
        if as_json:
            result = run_bench(users, timedelta(seconds=timeout_seconds), db, via.value, batch=batch, workers=workers)
            typer.echo(json.dumps(result.to_dict()))
        else:
            with bench_progress() as progress:
                result = run_bench(users, timedelta(seconds=timeout_seconds), db, via.value, progress, batch, workers)
            print_bench(result.to_dict())
    except (BenchError, StoreError) as exc:  # the harness or its database, said in words
        raise _fail(exc) from None
    if not result.correct:
        raise typer.Exit(1)


def _bench_audience(profiles: int, db: str | None, as_json: bool) -> None:
    from engine.bench.audience import run_audience_bench
    from engine.cli.report import bench_progress, print_audience_bench
    from engine.host.server import tune_runtime

    if db is not None and not db.startswith("sqlite:///"):
        raise _fail(ValueError("--audience: the audience bench runs on a SQLite --db"))
    tune_runtime()
    if as_json:
        result = run_audience_bench(profiles, db)
        typer.echo(json.dumps(result.to_dict()))
    else:
        with bench_progress() as progress:
            result = run_audience_bench(profiles, db, progress)
        print_audience_bench(result.to_dict())
    if not result.correct:
        raise typer.Exit(1)
