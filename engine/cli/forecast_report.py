"""`journey forecast`'s output: rich tables of the forecast document, its progress bar on
stderr, and the picture of cost against reach (matplotlib, the `plot` extra)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table


@contextmanager
def forecast_progress(show: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    """A bar on stderr fed (people done, people in all), when `show` (stderr is a terminal, or
    `--progress`); gone once the forecast ends."""
    if not show:
        yield None
        return
    bar = Progress(TextColumn("forecasting"), BarColumn(), MofNCompleteColumn(), TextColumn("people"),
                   TimeElapsedColumn(), console=Console(stderr=True, force_terminal=True), transient=True)
    task: list[TaskID] = []
    with bar:
        def update(done: int, total: int | None) -> None:
            if not task:
                task.append(bar.add_task("people", total=total))
            bar.update(task[0], completed=done, total=total)

        yield update


def _interval(figure: dict[str, float], money: bool = False) -> str:
    form = "{:,.4f}" if money else "{:,.0f}"
    return f"{form.format(figure['mean'])}  ({form.format(figure['p5'])} to {form.format(figure['p95'])})"


def _channels_table(document: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    for column in ("channel", "messages", "cost", "people reached"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for channel, figures in document["channels"].items():
        table.add_row(channel, _interval(figures["messages"]), _interval(figures["cost"], True),
                      _interval(figures["reached"]))
    table.add_row("all", "", _interval(document["cost"], True), _interval(document["reached"]), style="bold")
    return table


def _totals_table(document: dict[str, Any]) -> Table:
    table = Table(title="people and sends (mean, 90% interval)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    per = document.get("cost_per_reached")
    timing = document["time_to_engagement"]
    rows = [("never reached", _interval(document["never_reached"])),
            ("cost per person reached", "-" if per is None else f"{per:.4f}"),
            ("sends deferred by quiet hours", _interval(document["deferred_quiet_hours"])),
            *((f"skipped: {reason}", _interval(figure)) for reason, figure in document["skipped"].items()),
            *((f"instances {status}", _interval(figure)) for status, figure in document["ended"].items()),
            ("first engagement p50 / p90", f"{_duration(timing['p50'])} / {_duration(timing['p90'])}")]
    for row in rows:
        table.add_row(*row)
    return table


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def print_forecast(document: dict[str, Any], console: Console | None = None) -> None:
    """The forecast as tables: per channel, the totals, and with --vs the other version and the difference."""
    console = console or Console()
    head = f"{document['journey']}: {document['profiles']:,} people x {document['runs']} runs (seed {document['seed']})"
    console.print(_channels_table(document, f"{head}: mean (90% interval)"))
    console.print(_totals_table(document))
    if "vs" in document:
        console.print(_channels_table(document["vs"], f"vs {document['vs']['journey']}: mean (90% interval)"))
        console.print(_channels_table(document["difference"], "difference (vs minus this), same draws"))
    segments = document.get("segments") or {"values": {}}
    for value, figures in segments["values"].items():
        console.print(_channels_table(figures, f"{segments['by']} = {value} ({figures['profiles']:,} people)"))


def plot(document: dict[str, Any], path: Path) -> None:
    """Cost against people reached, each version a point with its 90% intervals as error bars."""
    import matplotlib  # the plot extra (engine.cli.main names it when it is missing)

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4.5))
    for name, version in [(document["journey"], document), *([(document["vs"]["journey"], document["vs"])]
                                                             if "vs" in document else [])]:
        reached, cost = version["reached"], version["cost"]
        axes.errorbar(reached["mean"], cost["mean"], fmt="o", capsize=4, label=name,
                      xerr=[[reached["mean"] - reached["p5"]], [reached["p95"] - reached["mean"]]],
                      yerr=[[cost["mean"] - cost["p5"]], [cost["p95"] - cost["mean"]]])
    axes.set_xlabel(f"people reached (of {document['profiles']:,})")
    axes.set_ylabel("cost")
    axes.set_title(f"{document['journey']}: cost against reach, {document['runs']} runs (90% intervals)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
