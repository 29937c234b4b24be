"""The one YAML reader and pydantic-error formatter behind journey, policy and providers files."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from channels.yaml_lines import FileError, describe_errors, read_mapping, read_yaml


def test_scalars_read_as_the_author_means_them() -> None:
    located, problems = read_yaml("at: 22:00\nflag: yes\nswitch: off\nreal: true\nday: 2026-01-05\n", "f.yaml")
    assert problems == []
    assert located.data == {"at": "22:00", "flag": "yes", "switch": "off", "real": True, "day": "2026-01-05"}


def test_every_key_and_item_keeps_its_line() -> None:
    located, _ = read_yaml("a:\n  b:\n    - x\n    - {c: 1}\n", "f.yaml")
    assert located.lines == {(): 1, ("a",): 1, ("a", "b"): 2, ("a", "b", 0): 3, ("a", "b", 1): 4,
                             ("a", "b", 1, "c"): 4}
    assert located.line(("a", "b", 1, "nope", 3)) == 4


def test_duplicate_keys_are_all_reported() -> None:
    _, problems = read_yaml("a: 1\nb: 2\na: 3\nb: 4\n", "f.yaml")
    assert [str(p) for p in problems] == ["f.yaml:3: duplicate key 'a' (first at line 1)",
                                          "f.yaml:4: duplicate key 'b' (first at line 2)"]


def test_a_mapping_is_required_where_one_is_expected() -> None:
    with pytest.raises(FileError, match=r"^f\.yaml:1: expected a mapping of keys$"):
        read_mapping("- a\n", "f.yaml")
    assert read_mapping("# empty\n", "f.yaml").data is None


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    colour: str
    size: int = 1


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[_Inner]


def test_formatter_suggests_the_key_meant_or_lists_the_allowed_ones() -> None:
    located = read_mapping("items:\n  - {colour: red}\n  - colour: blue\n    sise: 2\n    weight: 3\n", "f.yaml")
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate(located.data)
    assert [str(p) for p in describe_errors(caught.value, located, _Outer)] == [
        "f.yaml:4: unknown key 'sise' in items.1; did you mean 'size'?",
        "f.yaml:5: unknown key 'weight' in items.1; expected one of: colour, size",
    ]
