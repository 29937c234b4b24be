"""Rich tables for `journey simulate` without --json: messages, skipped sends, funnel, totals."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
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
