"""Text renderings of a compiled journey graph for `journey graph` (Mermaid, Graphviz dot)."""

from __future__ import annotations

import json

from engine.compiler import END, CompiledJourney


def _label(journey: CompiledJourney, node: str) -> str:
    if node == END:
        return "end"
    data = journey.graph.nodes[node]
    return f"{node} ({data['type']})"


def to_mermaid(journey: CompiledJourney) -> str:
    """A `flowchart TD` that GitHub and most editors render inline."""
    ids = {node: f"n{i}" for i, node in enumerate(journey.graph.nodes)}
    lines = ["flowchart TD", f"    start([{journey.definition.trigger.event}]) --> {ids[journey.first_step]}"]
    for node in journey.graph.nodes:
        if node == END and not journey.graph.in_degree(END):
            continue
        text = _label(journey, node).replace('"', "'")
        shape = f'(["{text}"])' if node == END else f'["{text}"]'
        lines.append(f"    {ids[node]}{shape}")
    for source, target, data in journey.graph.edges(data=True):
        label = str(data.get("label", "")).replace('"', "'").replace("|", "/")
        arrow = f'-->|"{label}"|' if label else "-->"
        lines.append(f"    {ids[source]} {arrow} {ids[target]}")
    return "\n".join(lines) + "\n"


def to_dot(journey: CompiledJourney) -> str:
    """Graphviz dot; labels are JSON-quoted, which dot accepts as its string syntax."""
    lines = [f"digraph {json.dumps(journey.id)} {{", "    rankdir=TB;"]
    for node in journey.graph.nodes:
        if node == END and not journey.graph.in_degree(END):
            continue
        shape = "ellipse" if node == END else "box"
        lines.append(f"    {json.dumps(node)} [label={json.dumps(_label(journey, node))}, shape={shape}];")
    for source, target, data in journey.graph.edges(data=True):
        label = str(data.get("label", ""))
        attrs = f" [label={json.dumps(label)}]" if label else ""
        lines.append(f"    {json.dumps(source)} -> {json.dumps(target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"
