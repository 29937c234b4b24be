"""`journey graph`: labels that carry what a reader needs, in Mermaid and dot; SVG and PNG through
Graphviz's `dot` when it is installed, and a message naming the package to install when it is not."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.cli.graphs import GRAPHVIZ_MISSING, parts, step_order
from engine.compiler import load_file, load_text

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

JOURNEY = """\
id: every-label
trigger: {event: order.placed, when: "event.properties.total > 10"}
instance_key: event.properties.order_id
exit_on: [order.cancelled, account.closed]
goal: {event: review.written, within: 3d}
steps:
  - {id: pause, type: wait, duration: 90m}
  - {id: thanks, type: send, message: thanks, channels: [push, sms], strategy: escalate, escalate_after: 30m}
  - {id: morning, type: wait, until: "09:00"}
  - {id: before, type: wait, until: event.properties.delivery_at, offset: -24h}
  - {id: opened, type: wait_for, event: push.opened, when: "event.properties.x == 1", timeout: 2d,
     on_event: vip, on_timeout: ab}
  - id: vip
    type: branch
    branches: [{when: "profile.attributes.tier == 'gold'", next: gold}]
    default: ab
  - {id: gold, type: send, message: thanks, urgency: critical, next: done}
  - {id: ab, type: split, paths: [{weight: 3, next: a}, {weight: 1, next: done}]}
  - {id: a, type: send, message: thanks, strategy: cheapest}
  - {id: only_push, type: send, message: thanks, channels: [push]}
  - {id: done, type: exit}
messages:
  thanks:
    push: {body: "Thanks"}
    sms: {text: "Thanks"}
"""


@pytest.fixture
def journey_file(tmp_path: Path) -> Path:
    path = tmp_path / "every-label.yaml"
    path.write_text(JOURNEY)
    return path


def _graph(path: Path, fmt: str) -> str:
    result = runner.invoke(app, ["graph", str(path), "--format", fmt])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("fmt", ["dot", "mermaid"])
def test_labels_carry_what_a_reader_needs(journey_file: Path, fmt: str) -> None:
    text = _graph(journey_file, fmt).replace("<br/>", "\\n")
    for words in [
        "start: order.placed\\nwhen event.properties.total > 10\\none per event.properties.order_id",
        "pause (wait)\\n90m",  # a wait's duration
        "morning (wait)\\nuntil 09:00 local time",
        "before (wait)\\nuntil event.properties.delivery_at -1d",
        "thanks (send)\\nmessage thanks\\npush, sms: escalate after 30m",  # channels and strategy
        "gold (send)\\nmessage thanks\\npush, sms: all (urgency critical)",  # the urgency's default
        "a (send)\\nmessage thanks\\npush, sms: cheapest",
        'only_push (send)\\nmessage thanks\\npush"',  # one channel: no strategy, nothing to escalate to
        "opened (wait_for)\\npush.opened\\nwhen event.properties.x == 1\\ntimeout 2d",
        "on push.opened", "timeout 2d",  # wait_for's two ways out
        "profile.attributes.tier == 'gold'", "default",  # branch conditions
        "75%", "25%",  # split weights
        "exit_on: order.cancelled, account.closed", "goal: review.written within 3d",
    ]:
        assert words in text, words


NEW_STEPS = """\
id: new-steps
trigger: {event: order.updated}
steps:
  - {id: gather, type: digest, window: 30m, until: "18:00", count: 10}
  - {id: once_a_day, type: throttle, limit: 1, period: 1d, key: event.properties.order, on_throttled: done}
  - id: paid_or_not
    type: wait_for
    events: [order.paid, order.cancelled]
    lookback: 1h
    timeout: 1d
    on_event: {order.paid: thanks, order.cancelled: done}
    on_timeout: day_before
  - {id: day_before, type: wait, until: event.properties.starts_at, offset: {days: -1}, if_past: done}
  - {id: remind, type: send, message: thanks, channels: [sms], expires: event.properties.starts_at}
  - {id: thanks, type: send, message: thanks, channels: [sms], expires_after: 2h}
  - {id: done, type: exit}
messages:
  thanks: {sms: {text: "{{ digest.count }} updates"}}
"""


@pytest.mark.parametrize("fmt", ["dot", "mermaid"])
def test_the_new_steps_say_how_they_wait_and_where_they_lead(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "new-steps.yaml"
    path.write_text(NEW_STEPS)
    text = _graph(path, fmt).replace("<br/>", "\\n")
    for words in [
        "gather (digest)\\nwindow 30m until 18:00 local time or 10 events",
        "once_a_day (throttle)\\n1 per 1d\\nper event.properties.order",
        "paid_or_not (wait_for)\\norder.paid or order.cancelled\\nlookback 1h\\ntimeout 1d",
        "day_before (wait)\\nuntil event.properties.starts_at -1d local time\\nif past: done",
        "remind (send)\\nmessage thanks\\nsms\\nexpires event.properties.starts_at",
        "thanks (send)\\nmessage thanks\\nsms\\nexpires after 2h",
        "on order.paid", "on order.cancelled", "throttled", "if past",
    ]:
        assert words in text, words


def test_exit_on_and_goal_are_dashed_edges_from_the_start_node(journey_file: Path) -> None:
    dot = _graph(journey_file, "dot")
    assert '"(start)" -> "pause";' in dot
    assert '"(start)" -> "(exited)" [label="exit_on: order.cancelled, account.closed", style=dashed];' in dot
    assert '"(start)" -> "(converted)" [label="goal: review.written within 3d", style=dashed];' in dot
    mermaid = _graph(journey_file, "mermaid")
    assert 'n0 -.->|"exit_on: order.cancelled, account.closed"| ' in mermaid


def test_every_step_is_a_node_once(journey_file: Path) -> None:
    nodes, edges = parts(load_file(journey_file))
    ids = [n.id for n in nodes]
    assert len(ids) == len(set(ids))
    assert set(ids) >= {"pause", "thanks", "morning", "before", "opened", "vip", "gold", "ab", "a", "done"}
    assert {e.source for e in edges} | {e.target for e in edges} <= set(ids)


def test_graph_to_a_file(journey_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.mmd"
    result = runner.invoke(app, ["graph", str(journey_file), "-o", str(out)])
    assert result.exit_code == 0 and result.stdout == ""
    assert out.read_text().startswith("flowchart TD")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is not installed")
@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_svg_and_png_are_rendered_by_graphviz(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"g.{fmt}"
    result = runner.invoke(app, ["graph", str(ROOT / "journeys" / "cart-abandonment.yaml"), "--format", fmt,
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    if fmt == "svg":
        assert "<svg" in data.decode() and "nudge (send)" in data.decode()
    else:
        assert data.startswith(b"\x89PNG")


def _fake_dot(folder: Path, script: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "dot").write_text("#!/bin/sh\n" + script)
    (folder / "dot").chmod(0o755)


def test_the_dot_program_gets_the_format_the_file_and_the_graph(journey_file: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    _fake_dot(bin_dir, 'echo "$@" > "$0.args"\nwhile IFS= read -r line; do printf "%s\\n" "$line"; done > "$3"\n')
    monkeypatch.setenv("PATH", str(bin_dir))
    out = tmp_path / "g.png"
    result = runner.invoke(app, ["graph", str(journey_file), "--format", "png", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (bin_dir / "dot.args").read_text().split() == ["-Tpng", "-o", str(out)]
    assert out.read_text() == _graph(journey_file, "dot")


def test_a_dot_failure_is_reported(journey_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_dot(tmp_path / "bin", 'echo "Error: syntax error in line 3" >&2\nexit 1\n')
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    result = runner.invoke(app, ["graph", str(journey_file), "--format", "svg", "-o", str(tmp_path / "g.svg")])
    assert result.exit_code == 1
    assert "journey graph: dot could not render" in result.output and "syntax error in line 3" in result.output


def test_without_graphviz_the_message_names_the_package(journey_file: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = runner.invoke(app, ["graph", str(journey_file), "--format", "svg", "-o", str(tmp_path / "g.svg")])
    assert result.exit_code == 1
    assert result.output.strip() == GRAPHVIZ_MISSING == (
        "journey graph: the dot program of Graphviz is needed for svg/png: "
        "apt-get install graphviz (Debian/Ubuntu) or brew install graphviz (macOS)")
    assert not (tmp_path / "g.svg").exists()


def test_svg_needs_an_output_file(journey_file: Path) -> None:
    result = runner.invoke(app, ["graph", str(journey_file), "--format", "svg"])
    assert result.exit_code == 2
    assert "add -o FILE" in result.output


def test_the_readme_graph_is_current() -> None:
    """Re-render with `journey graph journeys/cart-abandonment.yaml --format svg -o docs/cart-abandonment.svg`."""
    svg = (ROOT / "docs" / "cart-abandonment.svg").read_text(encoding="utf-8")
    assert "docs/cart-abandonment.svg" in (ROOT / "README.md").read_text(encoding="utf-8")
    nodes, edges = parts(load_file(ROOT / "journeys" / "cart-abandonment.yaml"))
    for line in [line for node in nodes for line in node.lines] + [edge.label for edge in edges if edge.label]:
        assert html.escape(line, quote=False) in svg, line


def test_step_order_follows_the_graph_with_loops_together() -> None:
    journey = load_text("""\
id: loop
trigger: {event: a}
steps:
  - {id: start, type: branch, branches: [{when: "event.x", next: late}], default: poll}
  - {id: late, type: exit}
  - {id: poll, type: wait, duration: 1h}
  - {id: check, type: branch, branches: [{when: "event.y", next: poll}], default: finish}
  - {id: finish, type: send, message: m}
messages:
  m: {sms: {text: hi}}
""", "loop.yaml")
    assert step_order(journey) == ["start", "late", "poll", "check", "finish"]
    cart = load_file(ROOT / "journeys" / "cart-abandonment.yaml")
    assert step_order(cart) == ["wait_1h", "nudge", "big_cart", "wait_1d", "discount", "done"]
