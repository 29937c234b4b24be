"""`journey forecast FILE --profiles P.jsonl|--db URL`: what a journey would send, cost and reach
over a whole population before launch, and with `--vs` the difference another version makes.
A thin layer over engine.forecast: options in, tables, JSON or a picture out."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path

import typer

from channels import PolicyError, load_policy
from engine.cli.forecast_report import forecast_progress, plot, print_forecast
from engine.clock import SystemClock
from engine.compiler import load_file
from engine.errors import EventError, InputError, JourneyDefinitionError, StoreError
from engine.events import parse_time
from engine.forecast.population import Population
from engine.forecast.runner import DEFAULT_RUNS, Options, Version, forecast

PLOTS = (".png", ".svg")


def forecast_command(
    file: Path = typer.Argument(..., metavar="FILE", help="a journey file"),
    profiles: Path | None = typer.Option(None, "--profiles", metavar="FILE", help="the population: profiles, "
                                         "JSON Lines"),
    db: str | None = typer.Option(None, "--db", metavar="URL", help="or the profiles of this database"),
    events: Path | None = typer.Option(None, "--events", metavar="FILE", help="events, JSON Lines: the entry "
                                       "events (optional for a journey entered by audience runs)"),
    policy: Path | None = typer.Option(None, "--policy", metavar="FILE", help="policy YAML merged over the default"),
    vs: Path | None = typer.Option(None, "--vs", metavar="FILE", help="compare with this version of the journey"),
    vs_policy: Path | None = typer.Option(None, "--vs-policy", metavar="FILE",
                                          help="compare with the journey under this policy"),
    runs: int = typer.Option(DEFAULT_RUNS, "--runs", min=1, metavar="N", help="Monte Carlo runs"),
    seed: int = typer.Option(0, "--seed", min=0, metavar="S", help="the draws' seed: the same seed, the same "
                             "forecast"),
    by: str | None = typer.Option(None, "--by", metavar="FIELD", help="per segment: attributes.<name>, timezone "
                                  "or locale"),
    start: str | None = typer.Option(None, "--start", metavar="T", help="audience runs from T (RFC 3339)"),
    until: str | None = typer.Option(None, "--until", metavar="T", help="audience runs up to T"),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", min=1, metavar="K",
                                help="processes (default: one per core)"),
    picture: Path | None = typer.Option(None, "--plot", metavar="FILE", help="draw cost against reach, .png or "
                                        ".svg (pip install 'journey-engine[plot]')"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
    progress: bool = typer.Option(False, "--progress", help="a progress bar on stderr even when it is no terminal"),
) -> None:
    """Forecast messages, cost and reach per channel over a population, with 90% intervals.

    Engagement is drawn from each person's history, else the policy's priors (docs/cli.md)."""
    if (profiles is None) == (db is None):
        raise typer.BadParameter("give exactly one of --profiles FILE or --db URL", param_hint="--profiles")
    if vs is not None and vs_policy is not None:
        raise typer.BadParameter("--vs compares two journeys, --vs-policy two policies: give one", param_hint="--vs")
    if picture is not None and picture.suffix.lower() not in PLOTS:
        raise typer.BadParameter(f"{picture}: a .png or .svg file", param_hint="--plot")
    if picture is not None:
        import matplotlib  # noqa: F401 - the plot extra, asked for before the work, not after it
    try:
        sources = [(file, policy), *([(vs, policy)] if vs else []), *([(file, vs_policy)] if vs_policy else [])]
        versions = [Version(load_file(journey), load_policy(chosen)) for journey, chosen in sources]
        _needs_events(versions, events)
        population = Population(profiles or str(db), events or ())
        options = Options(runs=runs, seed=seed, by=by, start=_instant(start, "--start"),
                          until=_instant(until, "--until"), now=SystemClock().now())
        with forecast_progress(progress or sys.stderr.isatty()) as told:
            document = forecast(versions, population, options, sources, workers, told)
    except (JourneyDefinitionError, PolicyError, InputError, StoreError) as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail(OSError(f"{exc.filename}: {exc.strerror}")) from None
    if picture is not None:
        plot(document, picture)
    if as_json:
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print_forecast(document)


def _needs_events(versions: list[Version], events: Path | None) -> None:
    journey = versions[0].journey
    if events is None and journey.definition.trigger.kind == "event":
        raise InputError(f"--events: required for {journey.id}, which an event starts (trigger.event)")


def _instant(value: str | None, option: str) -> datetime | None:
    try:
        return parse_time(value, option) if value is not None else None
    except EventError as exc:
        raise InputError(str(exc)) from None


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(str(exc), err=True)
    return typer.Exit(1)
