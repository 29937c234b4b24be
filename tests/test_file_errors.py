"""Journey, policy and providers files share one reader and one error formatter, so a
misspelt key is answered the same way in each: `file:line: ... did you mean ...`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from channels import PolicyError, load_policy
from channels.providers.config import ProvidersError, load_providers
from engine.clock import SystemClock
from engine.compiler import load_file
from engine.errors import JourneyDefinitionError

LOADERS: dict[str, Callable[[Path], object]] = {
    "journey": load_file,
    "policy": load_policy,
    "providers": lambda path: load_providers(path, environ={}, clock=SystemClock().seconds),
}
CASES = {
    "journey": ("id: j\ntrigger: {event: x}\nsteps:\n  - {id: a, type: wait, duraton: 1h}\n",
                ":4: step 'a': unknown key 'duraton'; did you mean 'duration'?"),
    "policy": ("quiet_hours:\n  start: 22:00\n  ned: 07:00\n",
               ":3: unknown key 'ned' in quiet_hours; did you mean 'end'?"),
    "providers": ("providers:\n  - type: console\n    chanels: [push]\n",
                  ":3: unknown key 'chanels' in providers.0; did you mean 'channels'?"),
}


@pytest.mark.parametrize("kind", CASES)
def test_an_unknown_key_is_named_by_file_and_line(tmp_path: Path, kind: str) -> None:
    text, expected = CASES[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    with pytest.raises((JourneyDefinitionError, PolicyError, ProvidersError)) as caught:
        LOADERS[kind](path)
    assert str(caught.value) == f"{path}{expected}"


@pytest.mark.parametrize("kind", ["policy", "providers"])
def test_a_key_nothing_is_close_to_gets_the_allowed_keys(tmp_path: Path, kind: str) -> None:
    text = {"policy": "sms: {max_segments: 2, zzz: 1}\n", "providers": "providers:\n  - {type: console, zzz: 1}\n"}
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text[kind])
    with pytest.raises((PolicyError, ProvidersError), match=r"unknown key 'zzz' in \S+; expected one of: "):
        LOADERS[kind](path)


DEEP = "x: " + "[" * 1500 + "]" * 1500 + "\n"  # 1,500 nested lists: a RecursionError traceback before


@pytest.mark.parametrize("kind", CASES)
def test_a_file_nested_1500_levels_deep_is_a_file_line_problem(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(f"{CASES[kind][0]}{DEEP}")
    with pytest.raises((JourneyDefinitionError, PolicyError, ProvidersError)) as caught:
        LOADERS[kind](path)
    line = CASES[kind][0].count("\n") + 1
    assert str(caught.value) == f"{path}:{line}: nested more than 100 levels deep"


def test_validate_of_a_deeply_nested_file_exits_1_naming_it_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("id: deep\n" + DEEP)
    result = subprocess.run([str(Path(sys.executable).parent / "journey"), "validate", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"{path}:2: nested more than 100 levels deep"
    assert "Traceback" not in result.stdout + result.stderr
