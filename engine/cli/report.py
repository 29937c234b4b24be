"""Rich output of the CLI: `journey simulate` tables (messages, skipped sends, funnel, outcomes per user,
totals) and its progress bar; `journey bench` progress and figures."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

PROGRESS_AFTER = 1.0  # seconds a dry run goes quietly before its progress bar shows
PHASES = {"events": "events", "timers": "timers fired after the last event", "report": "(writing the report)"}
_TOTALS = ("users", "entered", "completed", "exited", "converted", "active", "failed", "cost")


def _decisions(decisions: list[dict[str, Any]]) -> str:
    """`push ok, sms no_consent`; with strategy auto's figures, `push ok (reach 0.80)` (the costs
    are in the cost column and the choices' reasons)."""
    return ", ".join(_decision(d) for d in decisions)


def _decision(d: dict[str, Any]) -> str:
    text = f"{d['channel']} ok" if d["eligible"] else f"{d['channel']} {d['reason']}"
    if d.get("reach") is None:
        return text
    fallback = f" {d['fallback']}" if d.get("fallback") else ""
    return f"{text} ({fallback.strip() + ' ' if fallback else ''}reach {d['reach']:.2f})"


def clock_times(stamps: list[str]) -> list[str]:
    """RFC 3339 UTC times, short enough for 80 columns and never cut: `Jan 05 10:00` (seconds when any
    has them; the year too when they span more than one)."""
    times = [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps]
    day = "%Y-%m-%d" if len({t.year for t in times}) > 1 else "%b %d"
    clock = "%H:%M:%S" if any(t.second or t.microsecond for t in times) else "%H:%M"
    return [t.strftime(f"{day} {clock}") for t in times]


def _new_table(title: str, caption: str | None = None) -> Table:
    """Light rules, no outer edge: more of 80 columns left for the text."""
    return Table(title=title, caption=caption, caption_justify="left", title_justify="left", box=box.SIMPLE_HEAD,
                 show_edge=False, pad_edge=False, collapse_padding=True)


_WRAPPED = ("step", "message", "last step", "status")  # wrap at spaces, and ids after a `_`, `-` or `.`
ID_WIDTH = 13
"""Below NARROW columns, an id longer than this is broken after its separators (`booking_` /
`confirmed`), never inside a word; the columns that are never cut keep the rest of the width."""
NARROW = 110
_SEPARATED = re.compile(r"[^_.\-]+[_.\-]*|[_.\-]+")


def _breakable(text: str, width: int | None) -> str:
    """`text` with each word longer than `width` split into lines after its separators."""
    if width is None or len(text) <= width:
        return text
    return " ".join(_split_word(word, width) for word in text.split(" "))


def _split_word(word: str, width: int) -> str:
    lines = [""]
    for piece in _SEPARATED.findall(word):
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(lines)


def _table(title: str, columns: tuple[str, ...], rows: Sequence[tuple[str, ...]], limit: int | None,
           noun: str, width: int = NARROW) -> Table:
    """A table of at most `limit` rows, saying how many more there were. Times, users, channels and
    counts are never wrapped or cut; ids and statuses wrap between words and after an id's
    separators, and so does the last column, between words."""
    shown = rows if limit is None else rows[:limit]
    hidden = len(rows) - len(shown)
    table = _new_table(title, caption=f"… and {hidden} more {noun}{'' if hidden == 1 else 's'}" if hidden else None)
    wrapped = {n for n, column in enumerate(columns) if column in _WRAPPED}
    for n, column in enumerate(columns):
        if n == len(columns) - 1:
            table.add_column(column, overflow="fold", min_width=len(column))
        elif n in wrapped:
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, no_wrap=True, justify="right" if column == "cost" else "left")
    id_width = ID_WIDTH if width < NARROW else None
    for row in shown:
        table.add_row(*(_breakable(cell, id_width) if n in wrapped else cell for n, cell in enumerate(row)))
    return table


def print_report(result: dict[str, Any], console: Console | None = None, order: list[str] | None = None,
                 limit: int | None = None, summary_only: bool = False) -> None:
    """The simulate document as tables: messages and skipped sends (unless `summary_only`), the funnel
    in `order` (the graph's), per-user outcomes, totals. `limit` caps the rows of each list."""
    console = console or Console()
    console.print(f"[bold]journey[/bold] {result['journey']}")
    if result.get("runs"):
        console.print(_runs(result["runs"], limit, console.width))
    if not summary_only:
        _print_sends(result, console, limit)
    console.print(_funnel(result, order))
    console.print(_outcomes(result, limit, console.width))
    summary = result["summary"]
    totals = _new_table("totals")
    for key in _TOTALS:
        totals.add_column(key, justify="right")
    totals.add_row(*(str(summary[k]) for k in _TOTALS))
    console.print(totals)
    by_channel = ", ".join(f"{c}: {n}" for c, n in summary["messages"].items()) or "none"
    console.print(f"messages by channel: {by_channel}")


def _runs(runs: list[dict[str, Any]], limit: int | None, width: int) -> Table:
    """The audience runs: when, and who they matched, entered and skipped."""
    times = clock_times([r["scheduled_at"] for r in runs])
    return _table("audience runs", ("at (UTC)", "run", "profiles", "matched", "entered", "skipped"), [
        (at, r["run_id"], str(r["profiles"]), str(r["matched"]), str(r["entered"]),
         ", ".join(f"{reason} {n}" for reason, n in r["skipped"].items()) or "-")
        for at, r in zip(times, runs, strict=True)], limit, "run", width)


def _print_sends(result: dict[str, Any], console: Console, limit: int | None) -> None:
    messages = result["messages"]
    times = clock_times([m["at"] for m in messages])
    console.print(_table("messages", ("at (UTC)", "user", "step", "channel", "message", "cost", "decisions"), [
        (at, m["user_id"], m["step"] or "-", m["channel"], _variant(m), f"{m['cost']:.4f}", _decisions(m["decisions"]))
        for at, m in zip(times, messages, strict=True)], limit, "message", console.width))
    _print_digests(messages, console, limit)
    chosen = [(at, m) for at, m in zip(times, messages, strict=True) if m.get("choice")]
    if chosen:
        console.print(_table("channel choices (strategy auto)", ("at (UTC)", "user", "step", "order", "why"), [
            (at, m["user_id"], m["step"] or "-", " > ".join(m["choice"]["order"]), m["choice"]["reason"])
            for at, m in chosen], limit, "choice", console.width))
    skipped = result["skipped"]
    if skipped:
        times = clock_times([s["at"] for s in skipped])
        console.print(_table("skipped sends", ("at (UTC)", "user", "step", "message", "reason", "decisions"), [
            (at, s["user_id"], s["step"], s["message"], s["reason"], _decisions(s["decisions"]))
            for at, s in zip(times, skipped, strict=True)], limit, "skipped send", console.width))


def _variant(message: dict[str, Any]) -> str:
    """The message and, when a locale's variant was sent, which (`reminder (fr)`)."""
    return f"{message['message']} ({message['locale']})" if message.get("locale") else message["message"]


def _print_digests(messages: list[dict[str, Any]], console: Console, limit: int | None) -> None:
    """The messages sent with a digest: how many events each one carries and the time they span."""
    digested = [m for m in messages if m.get("digest")]
    if not digested:
        return
    times = clock_times([m["at"] for m in digested])
    spans = clock_times([t for m in digested for t in (m["digest"]["first_at"], m["digest"]["last_at"])])
    console.print(_table("digests", ("at (UTC)", "user", "step", "channel", "events", "first event", "last event"), [
        (at, m["user_id"], m["digest"]["step"], m["channel"], str(m["digest"]["count"]), spans[2 * n],
         spans[2 * n + 1]) for n, (at, m) in enumerate(zip(times, digested, strict=True))],
        limit, "digest", console.width))


def _funnel(result: dict[str, Any], order: list[str] | None) -> Table:
    """Instances that reached each step, the steps in graph order (every step, reached or not)."""
    reached = Counter(step for i in result["instances"] for step in dict.fromkeys(i["path"]))
    entered = result["summary"]["entered"]
    funnel = _new_table("funnel (graph order)")
    funnel.add_column("step")
    funnel.add_column("instances", justify="right")
    funnel.add_column("of entered", justify="right")
    for step in order if order is not None else list(reached):
        count = reached.get(step, 0)
        funnel.add_row(step, str(count), f"{100 * count / entered:.0f}%" if entered else "-")
    return funnel


def _outcomes(result: dict[str, Any], limit: int | None, width: int) -> Table:
    """One row per user who entered, in the order they entered: how their instances ended, where, and
    what they were sent or not."""
    instances: dict[str, list[dict[str, Any]]] = {}
    for instance in result["instances"]:
        instances.setdefault(instance["user_id"], []).append(instance)
    sent = {user: Counter(m["channel"] for m in group) for user, group in _by_user(result["messages"]).items()}
    skipped = {user: len(group) for user, group in _by_user(result["skipped"]).items()}
    rows = [(user, _statuses(group), ", ".join(dict.fromkeys(i["path"][-1] if i["path"] else "-" for i in group)),
             _counts(sent.get(user, Counter())), str(skipped.get(user, 0)))
            for user, group in instances.items()]
    return _table("outcomes per user", ("user", "status", "last step", "sent", "skipped"), rows, limit, "user",
                  width)


def _by_user(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["user_id"], []).append(row)
    return grouped


def _statuses(group: list[dict[str, Any]]) -> str:
    if len(group) == 1:
        reason = group[0].get("reason")
        return f"{group[0]['status']}: {reason}" if reason else str(group[0]["status"])
    return _counts(Counter(i["status"] for i in group))


def _counts(counter: Counter[str]) -> str:
    return ", ".join(name if n == 1 else f"{name} ×{n}" for name, n in counter.items()) or "-"


@contextmanager
def simulate_progress(after: float | None = None) -> Iterator[Callable[[int, int, str], None]]:
    """A progress bar on stderr for a dry run that takes more than `after` seconds (PROGRESS_AFTER), fed
    (done, in all, phase): the events, then the timers left after them, then the report, so the bar
    never sits at 100% while work goes on. Quiet for short runs and when stderr is no terminal; gone
    once the run ends."""
    wait = PROGRESS_AFTER if after is None else after
    console = Console(stderr=True)
    started = time.monotonic()
    bar = Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                   TimeElapsedColumn(), console=console, transient=True)
    shown: list[TaskID] = []
    checked = [started]

    def update(done: int, total: int, phase: str = "events") -> None:
        now = time.monotonic()
        if now - checked[0] < 0.05 and done < total:  # a cheap callback: looks at most 20 times a second
            return
        checked[0] = now
        if not shown:
            if now - started < wait or not console.is_terminal:
                return
            bar.start()
            shown.append(bar.add_task(PHASES.get(phase, phase), total=total))
        described = PHASES.get(phase, phase)
        changed = bar.tasks[0].description != described
        if changed:
            bar.refresh()  # the phase that ends, as it ends
        bar.update(shown[0], completed=done, total=total, description=described)
        if changed:
            bar.refresh()

    try:
        yield update
    finally:
        if shown:
            bar.stop()


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
            ("latest open after its push", f"{result.get('open_delay_max_ms', 0):.0f} ms"),
            *([("partitions that changed hands", str(result.get("lease_changes", 0)))] if workers else []),
            ("peak RSS", f"{result['peak_rss_mb']:.0f} MB"), ("database size", f"{result['db_mb']:.1f} MB"),
            *_bench_costs(result), ("correct", "yes" if result["correct"] else "NO")]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for problem in result["problems"]:
        console.print(f"[red]problem:[/red] {problem}")


def _bench_costs(result: dict[str, Any]) -> list[tuple[str, str]]:
    """What the run cost per event: the figures a busy machine hardly moves."""
    if not result.get("events"):
        return []
    postgres = result.get("postgres_cpu_ms_per_1k")
    return [("engine CPU per 1,000 events", f"{result['engine_cpu_ms_per_1k']:.0f} ms"),
            ("process CPU per 1,000 events", f"{result['process_cpu_ms_per_1k']:.0f} ms"),
            *([("PostgreSQL CPU per 1,000 events", f"{postgres:.0f} ms")] if postgres is not None else []),
            ("SQL statements / rows written per event",
             f"{result['statements_per_event']:.2f} / {result['rows_per_event']:.2f}"),
            ("load average (1 min)", f"{result['load_avg_1m']:.2f}")]


def print_audience_bench(result: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"audience run: {result['profiles']:,} profiles, {result['matching']:,} matching")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [("entered", f"{result['entered']:,}"), ("run time", f"{result['run_seconds']:.1f} s"),
            ("profiles entered/s", f"{result['entered_per_s']:,.0f}"),
            ("profiles looked at/s", f"{result['profiles_per_s']:,.0f}"),
            ("peak RSS", f"{result['peak_rss_mb']:.0f} MB"),
            ("2 s timers due during the run", str(result["timers"])),
            ("their lateness p50 / max", f"{result['timer_lateness_p50_ms']:.0f} / "
                                         f"{result['timer_lateness_max_ms']:.0f} ms"),
            ("database size", f"{result['db_mb']:.1f} MB"), ("correct", "yes" if result["correct"] else "NO")]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for problem in result["problems"]:
        console.print(f"[red]problem:[/red] {problem}")
