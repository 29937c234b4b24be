"""Rich tables for `journey simulate` without --json: messages, skipped sends, funnel, totals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table


def _decisions(decisions: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{d['channel']} ok" if d["eligible"] else f"{d['channel']} {d['reason']}" for d in decisions
    )


def print_report(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    summary = result["summary"]
    console.print(f"[bold]journey[/bold] {result['journey']}")
    messages = Table(title="messages")
    for column in ("at", "user", "step", "channel", "message", "cost", "decisions"):
        messages.add_column(column)
    for m in result["messages"]:
        messages.add_row(m["at"], m["user_id"], str(m["step"]), m["channel"], m["message"], f"{m['cost']:.4f}",
                         _decisions(m["decisions"]))
    console.print(messages)
    if result["skipped"]:
        skipped = Table(title="skipped sends")
        for column in ("at", "user", "step", "message", "reason", "decisions"):
            skipped.add_column(column)
        for s in result["skipped"]:
            skipped.add_row(s["at"], s["user_id"], s["step"], s["message"], s["reason"], _decisions(s["decisions"]))
        console.print(skipped)
    funnel = Table(title="funnel (instances that reached each step)")
    funnel.add_column("step")
    funnel.add_column("instances", justify="right")
    reached = Counter(step for i in result["instances"] for step in dict.fromkeys(i["path"]))
    for step, count in reached.items():
        funnel.add_row(step, str(count))
    console.print(funnel)
    totals = Table(title="totals")
    for key in ("users", "entered", "completed", "exited", "converted", "active", "failed", "cost"):
        totals.add_column(key, justify="right")
    totals.add_row(*(str(summary[k]) for k in ("users", "entered", "completed", "exited", "converted", "active",
                                               "failed", "cost")))
    console.print(totals)
    by_channel = ", ".join(f"{c}: {n}" for c, n in summary["messages"].items()) or "none"
    console.print(f"messages by channel: {by_channel}")


@contextmanager
def bench_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress display fed by `journey bench` (phase, done, total)."""
    with Progress(TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn()) as progress:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)

        yield update


def print_bench(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    workers = f", {result['workers']} workers" if result.get("workers", 1) > 1 else ""
    table = Table(title=f"W1: {result['users']} users, T = {result['timeout_s']} s, via {result['via']}, "
                        f"batches of {result['batch']}{workers}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [("events/s ingested", f"{result['events_per_s']:,.0f}"),
            ("events/s processed", f"{result['processed_per_s']:,.0f}"),
            ("timers fired/s", f"{result['timers_per_s']:,.0f}"),
            ("wall time beyond T", f"{result['wall_beyond_t_s']:.2f} s"),
            ("timer lateness p50 / p99", f"{result['lateness_p50_ms']:.0f} / {result['lateness_p99_ms']:.0f} ms"),
            ("peak RSS", f"{result['peak_rss_mb']:.0f} MB"), ("database size", f"{result['db_mb']:.1f} MB"),
            ("correct", "yes" if result["correct"] else "NO")]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for problem in result["problems"]:
        console.print(f"[red]problem:[/red] {problem}")
