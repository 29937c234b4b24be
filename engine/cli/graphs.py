"""Renderings of a compiled journey graph for `journey graph`: Mermaid and Graphviz dot as text, and
SVG or PNG through Graphviz's `dot` program when it is installed.

Labels carry what a reader needs: the trigger, each send's message, channels, strategy and expiry, each
wait's duration or time (its offset, what it does if that time has passed), each wait_for's events,
look-back and timeout, a digest's window and a throttle's limit; branch conditions, split shares, the
ways out of a wait_for, a throttle and an `if_past`, `exit_on` and the goal are on the edges (the last
two from the start node: they end an instance at any step).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import networkx as nx

from channels import Profile, SendRequest, effective_strategy
from engine.compiler import END, CompiledJourney
from engine.model import (
    HHMM,
    DigestStep,
    SendStep,
    Step,
    ThrottleStep,
    WaitForStep,
    WaitStep,
    format_duration,
)

START, EXITED, CONVERTED = "(start)", "(exited)", "(converted)"
GRAPHVIZ_MISSING = ("journey graph: the dot program of Graphviz is needed for svg/png: "
                    "apt-get install graphviz (Debian/Ubuntu) or brew install graphviz (macOS)")
RENDER_SECONDS = 60


class RenderError(Exception):
    """Graphviz is missing, or `dot` failed: the message says which and what to do."""


class Node(NamedTuple):
    id: str
    lines: tuple[str, ...]
    kind: str  # start | step | end: decides the shape


class Edge(NamedTuple):
    source: str
    target: str
    label: str
    dashed: bool = False


def _send_lines(journey: CompiledJourney, step: SendStep) -> tuple[str, ...]:
    channels = step.channels or journey.definition.messages[step.message].channels()
    if len(channels) == 1:  # one channel: no strategy to speak of, nothing to escalate to
        return f"message {step.message}", channels[0]
    request = SendRequest(profile=Profile(user_id=""), category=journey.definition.category, urgency=step.urgency,
                          candidates=tuple(channels), contents={}, template_errors={}, sent=(),
                          now=datetime(2000, 1, 1, tzinfo=UTC), strategy=step.strategy,
                          escalate_after=step.escalate_after)
    strategy, after = effective_strategy(request)
    how = f"{strategy} after {format_duration(after)}" if after is not None else strategy
    default = "" if step.strategy else f" (urgency {step.urgency})"
    return f"message {step.message}", f"{', '.join(channels)}: {how}{default}"


def _step_lines(journey: CompiledJourney, step: Step) -> tuple[str, ...]:
    head = f"{step.id} ({step.type})"
    if isinstance(step, SendStep):
        expires: tuple[str, ...] = (f"expires {step.expires}",) if step.expires else ()
        if step.expires_after is not None:
            expires = (f"expires after {format_duration(step.expires_after)}",)
        return head, *_send_lines(journey, step), *expires
    if isinstance(step, WaitStep):
        return head, *_wait_lines(step)
    if isinstance(step, WaitForStep):
        when = (f"when {step.when}",) if step.when else ()
        lookback = (f"lookback {format_duration(step.lookback)}",) if step.lookback else ()
        return head, " or ".join(step.event_types()), *when, *lookback, f"timeout {format_duration(step.timeout)}"
    if isinstance(step, DigestStep):
        return head, *_digest_lines(step)
    if isinstance(step, ThrottleStep):
        key = (f"per {step.key}",) if step.key else ()
        return head, f"{step.limit} per {format_duration(step.period)}", *key
    return (head,)


def _wait_lines(step: WaitStep) -> tuple[str, ...]:
    if step.duration is not None:
        return (format_duration(step.duration),)
    offset = ""
    if step.offset is not None:
        delta = step.offset_delta()
        shift = format_duration(delta) if delta else "0s"
        offset = f" {shift} local time" if step.on_calendar else f" {shift}"
    local = " local time" if HHMM.match(str(step.until)) else ""
    past = (f"if past: {step.if_past}",) if step.if_past != "go" else ()
    return f"until {step.until}{local}{offset}", *past


def _digest_lines(step: DigestStep) -> tuple[str, ...]:
    closes = [f"window {format_duration(step.window)}"] if step.window else []
    closes += [f"until {step.until} local time"] if step.until else []
    closes += [f"or {step.count} events"] if step.count else []
    key = (f"per {step.key}",) if step.key else ()
    return " ".join(closes), *key


def _start_lines(journey: CompiledJourney) -> tuple[str, ...]:
    definition = journey.definition
    trigger = definition.trigger
    zone = f" ({trigger.timezone})" if trigger.timezone else ""
    start = {"event": f"start: {trigger.event}", "schedule": f"start: schedule {trigger.schedule}{zone}",
             "at": f"start: at {trigger.at}{zone}"}[trigger.kind]
    lines = [start]
    if trigger.when or trigger.audience:
        lines.append(f"when {trigger.when}" if trigger.when else f"audience {trigger.audience}")
    if definition.instance_key:
        lines.append(f"one per {definition.instance_key}")
    if definition.re_entry != "always":
        lines.append(f"re_entry {definition.re_entry}")
    return tuple(lines)


def parts(journey: CompiledJourney) -> tuple[list[Node], list[Edge]]:
    """The nodes and edges every rendering draws, in the same order."""
    definition, graph = journey.definition, journey.graph
    nodes = [Node(START, _start_lines(journey), "start")]
    nodes += [Node(step.id, _step_lines(journey, step), "step") for step in definition.steps]
    edges = [Edge(START, journey.first_step, "")]
    edges += [Edge(s, t, str(data.get("label", ""))) for s, t, data in graph.edges(data=True)]
    if graph.in_degree(END):
        nodes.append(Node(END, ("end (completed)",), "end"))
    if definition.exit_on:
        nodes.append(Node(EXITED, ("exited",), "end"))
        edges.append(Edge(START, EXITED, f"exit_on: {', '.join(definition.exit_on)}", dashed=True))
    if definition.goal is not None:
        within = f" within {format_duration(definition.goal.within)}" if definition.goal.within else ""
        nodes.append(Node(CONVERTED, ("converted",), "end"))
        edges.append(Edge(START, CONVERTED, f"goal: {definition.goal.event}{within}", dashed=True))
    return nodes, edges


def _mermaid_text(text: str) -> str:
    return text.replace('"', "'").replace("|", "/")


def to_mermaid(journey: CompiledJourney) -> str:
    """A `flowchart TD` that GitHub and most editors render inline."""
    nodes, edges = parts(journey)
    ids = {node.id: f"n{i}" for i, node in enumerate(nodes)}
    shapes = {"start": ('(["', '"])'), "step": ('["', '"]'), "end": ('(["', '"])')}
    lines = ["flowchart TD"]
    for node in nodes:
        opening, closing = shapes[node.kind]
        lines.append(f"    {ids[node.id]}{opening}{'<br/>'.join(map(_mermaid_text, node.lines))}{closing}")
    for edge in edges:
        arrow = "-.->" if edge.dashed else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {ids[edge.source]} {arrow}{label} {ids[edge.target]}")
    return "\n".join(lines) + "\n"


def to_dot(journey: CompiledJourney) -> str:
    """Graphviz dot; labels are JSON-quoted, which dot accepts as its string syntax (`\\n` breaks a line)."""
    nodes, edges = parts(journey)
    shapes = {"start": "oval", "step": "box", "end": "ellipse"}
    lines = [f"digraph {json.dumps(journey.id)} {{", "    rankdir=TB;",
             '    node [fontname="Helvetica", fontsize=11]; edge [fontname="Helvetica", fontsize=10];']
    for node in nodes:
        style = ', style="rounded"' if node.kind == "step" else ""
        lines.append(f"    {json.dumps(node.id)} [label={json.dumps(chr(10).join(node.lines))}, "
                     f"shape={shapes[node.kind]}{style}];")
    for edge in edges:
        attrs = [f"label={json.dumps(edge.label)}"] if edge.label else []
        attrs += ["style=dashed"] if edge.dashed else []
        lines.append(f"    {json.dumps(edge.source)} -> {json.dumps(edge.target)}"
                     f"{' [' + ', '.join(attrs) + ']' if attrs else ''};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_source: str, fmt: str, out: Path) -> None:
    """Write `dot_source` as `fmt` (svg, png) to `out` with Graphviz's `dot -T<fmt> -o <out>`."""
    program = shutil.which("dot")
    if program is None:
        raise RenderError(GRAPHVIZ_MISSING)
    try:
        done = subprocess.run([program, f"-T{fmt}", "-o", str(out)], input=dot_source.encode("utf-8"),
                              capture_output=True, timeout=RENDER_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderError(f"journey graph: dot could not render {out}: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()
        raise RenderError(f"journey graph: dot could not render {out}: {detail or f'exit {done.returncode}'}")


def step_order(journey: CompiledJourney) -> list[str]:
    """The steps in graph order: topological from the first step (the steps of a loop together, in
    file order), ties in file order. `journey simulate` lists its funnel this way."""
    position = {step.id: i for i, step in enumerate(journey.definition.steps)}
    condensed = nx.condensation(journey.graph.subgraph(position))
    groups = {c: sorted(condensed.nodes[c]["members"], key=position.__getitem__) for c in condensed}
    ordered = nx.lexicographical_topological_sort(condensed, key=lambda c: position[groups[c][0]])
    return [step for group in ordered for step in groups[group]]
