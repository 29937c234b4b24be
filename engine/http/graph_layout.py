"""Where each step of a journey is drawn: `GET /v1/journeys/{id}/graph` for the console.

The console draws the graph in the browser as SVG, but placing the nodes is done here, from the
compiled networkx graph, so the page needs no layout library and every browser draws the same
picture. The layout is layered: a node sits one row below the lowest of the nodes that lead to
it (a loop's steps stacked in file order, so a back edge is the only one that points up), and
the nodes of a row are ordered by the mean column of what leads to them, which keeps branches
from crossing in the journeys people write. Pure: a compiled journey in, coordinates out.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from engine.compiler import END, CompiledJourney

START = "(start)"
COLUMN = 230
"""Pixels between the centres of two nodes of a row: a node is drawn 190 wide."""
ROW = 110
"""Pixels between two rows: a node is drawn 64 high, its edge label between."""


def journey_graph(journey: CompiledJourney) -> dict[str, Any]:
    """The nodes (`id`, `kind`: a step's type, `start` or `end`; `label`; `x`, `y`: the centre, in
    pixels from the top left) and the edges (`from`, `to`, `label`) of a journey, start and end
    included, with the drawing's `width` and `height`."""
    graph = _with_start(journey)
    rows = _rows(graph, _file_order(journey))
    places = _places(graph, rows)
    width = COLUMN * max(len(row) for row in rows)
    nodes = [{"id": node, "kind": graph.nodes[node]["type"], "label": _label(journey, node),
              "x": width // 2 + places[node], "y": ROW // 2 + ROW * depth}
             for depth, row in enumerate(rows) for node in row]
    edges = [{"from": a, "to": b, "label": str(data.get("label", ""))} for a, b, data in graph.edges(data=True)]
    return {"journey": journey.id, "version": journey.version, "nodes": nodes, "edges": edges,
            "width": width, "height": ROW * len(rows)}


def _with_start(journey: CompiledJourney) -> nx.DiGraph:
    """The compiled graph with the trigger as a node of its own, leading to the first step."""
    graph = nx.DiGraph()
    graph.add_node(START, type="start")
    graph.add_nodes_from(journey.graph.nodes(data=True))
    graph.add_edge(START, journey.first_step, label="")
    graph.add_edges_from(journey.graph.edges(data=True))
    if not graph.in_degree(END):  # every way out is an exit step: no "(end)" to draw
        graph.remove_node(END)
    return graph


def _file_order(journey: CompiledJourney) -> dict[str, int]:
    order = {START: -1, END: len(journey.definition.steps)}
    order.update((step.id, i) for i, step in enumerate(journey.definition.steps))
    return order


def _rows(graph: nx.DiGraph, order: dict[str, int]) -> list[list[str]]:
    """Nodes by row: each loop (a strongly connected component) takes as many rows as it has steps,
    and starts below the last row of every component leading to it."""
    condensed = nx.condensation(graph)
    members = {c: sorted(condensed.nodes[c]["members"], key=order.__getitem__) for c in condensed}
    first_row: dict[int, int] = {}
    for component in nx.topological_sort(condensed):
        above = [first_row[p] + len(members[p]) for p in condensed.predecessors(component)]
        first_row[component] = max(above, default=0)
    rows: list[list[str]] = [[] for _ in range(max(first_row[c] + len(members[c]) for c in condensed))]
    for component, row in sorted(first_row.items(), key=lambda item: order[members[item[0]][0]]):
        for offset, node in enumerate(members[component]):
            rows[row + offset].append(node)
    return rows


def _places(graph: nx.DiGraph, rows: list[list[str]]) -> dict[str, int]:
    """Each node's x from the drawing's centre line: a row's nodes side by side, ordered by the mean
    x of the nodes above that lead to them (file order among equals), the row centred."""
    places: dict[str, int] = {}
    for row in rows:
        def mean_above(node: str) -> float:
            above = [places[p] for p in graph.predecessors(node) if p in places]
            return sum(above) / len(above) if above else 0.0

        ordered = sorted(row, key=mean_above)  # stable: file order among equals
        places.update((node, COLUMN * i - COLUMN * (len(ordered) - 1) // 2) for i, node in enumerate(ordered))
    return places


def _label(journey: CompiledJourney, node: str) -> str:
    """What a node says under its id: what starts the journey, a step's type (a send's message)."""
    if node == START:
        trigger = journey.definition.trigger
        return trigger.event or (f"schedule {trigger.schedule}" if trigger.schedule else f"at {trigger.at}")
    if node == END:
        return "completed"
    step = journey.step(node)
    message = getattr(step, "message", None)
    return f"{step.type} {message}" if message else step.type
