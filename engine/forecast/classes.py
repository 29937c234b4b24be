"""People alike for a journey, and the paths their draws lead to, each evaluated once.

Two people whose inputs are the same as far as the journey and the channel rules can tell
(`Reads.key`: the attributes and event properties the journey reads, the channel rules' facts
about them, their consents, preferences and engagement history) follow the same path when their
draws pick the same outcomes: the evaluator is deterministic. So a forecast keeps, per class of
alike people, a tree of the outcomes met so far (`PathTree`): each node is one message, its
chances and a child per outcome drawn; a leaf is the path that sequence of outcomes came to. A
person's run walks the tree with their own draws and only evaluates (`walk`) where no one went
before. A population of a million profile-runs is a few thousand evaluations.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from jinja2 import TemplateSyntaxError

from channels import ConsentRecord, Policy, Profile, recipient_zone
from channels.links import strings_of
from channels.regions import recipient_region
from engine.compiler import CompiledJourney
from engine.events import Event
from engine.expressions import read_paths
from engine.forecast.outcomes import Chances, draw, slot
from engine.forecast.path import Path

_ADDRESSES = ("email", "phone", "push_token")


class Reads:
    """What a journey reads of a person and of their events, from its conditions and its
    messages (every string of the definition, as a template and as an expression). A value only
    ever written out whole (`{{ profile.attributes.first_name }}`) tells people apart by its
    characters alone (`shape`): Ava and Mia render texts of the same length and encoding."""

    def __init__(self, journey: CompiledJourney) -> None:
        used: set[tuple[str, ...]] = set()
        shown: set[tuple[str, ...]] = set()
        for text in strings_of(journey.definition.model_dump(mode="json")):
            _paths(text, used, shown)
        paths = used | shown
        shown = {p for p in shown if not any(q[:len(p)] == p and (q in used or q != p) for q in paths)}  # only whole
        self.user_id = bool({("profile",), ("profile", "user_id"), ("event",), ("event", "user_id")} & paths) or \
            any(p[0] == "preferences_url" for p in paths)
        self.profile = {p[1] for p in used if p[0] == "profile" and len(p) > 1} | \
            ({"*"} if ("profile",) in used else set())
        self.shown_profile = {p[1] for p in shown if p[0] == "profile" and len(p) == 2}
        self.all_attributes = bool({("profile",), ("profile", "attributes")} & used)
        self.attributes = frozenset({p[2] for p in paths if p[:2] == ("profile", "attributes") and len(p) > 2} |
                                    {"region"})
        self.shown_attributes = frozenset(p[2] for p in shown if p[:2] == ("profile", "attributes") and len(p) == 3)
        self.all_properties = bool({("event",), ("event", "properties")} & used) or any(p[0] == "digest" for p in paths)
        self.properties = frozenset(p[2] for p in paths if p[:2] == ("event", "properties") and len(p) > 2)
        self.shown_properties = frozenset(p[2] for p in shown if p[:2] == ("event", "properties") and len(p) == 3)
        self.trigger = journey.definition.trigger.event

    def key(self, profile: Profile, events: Sequence[Event], start: datetime | None, policy: Policy) -> bytes:
        """The person's inputs as far as the journey and the channel rules can tell them apart."""
        data = profile.to_dict()
        if not self.user_id:
            data["user_id"] = None
        for field in _ADDRESSES:
            if field in self.shown_profile:
                data[field] = shape(data[field])
            elif field not in self.profile and "*" not in self.profile:
                data[field] = data[field] is not None
        if not self.all_attributes:
            data["attributes"] = {k: shape(v) if k in self.shown_attributes else v
                                  for k, v in data["attributes"].items() if k in self.attributes}
        data["consents"] = [_consent(c, start) for c in profile.consents]
        data["region"] = recipient_region(profile, policy)
        data["zone"] = str(recipient_zone(profile, policy))
        ids: dict[str, int] = {}
        data["events"] = [self._event(e, ids) for e in events]
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)

    def _event(self, event: Event, ids: dict[str, int]) -> list[Any]:
        """An event as far as it tells people apart: its id only as which earlier one it repeats."""
        same = None if event.id is None else ids.setdefault(event.id, len(ids))
        properties = dict(event.properties)
        if event.type == self.trigger and not self.all_properties:
            properties = {k: shape(v) if k in self.shown_properties else v
                          for k, v in properties.items() if k in self.properties}
        return [event.type, event.timestamp.isoformat(), same, event.user_id if self.user_id else None, properties]


def shape(value: Any) -> str:
    """What a value written out whole changes in a text: its type, and its characters with every
    ASCII letter and digit the same (length, encoding, escaping and segments are kept), but a
    link's scheme (tracked links rewrite http and https links only)."""
    text = str(value)
    scheme = _SCHEME.match(text)
    head = scheme.group(0) if scheme else ""
    return f"{type(value).__name__}:{head}" + _ALNUM.sub("a", text[len(head):])


_ALNUM = re.compile(r"[A-Za-z0-9]")
_SCHEME = re.compile(r"https?://", re.IGNORECASE)


def _consent(consent: ConsentRecord, start: datetime | None) -> list[Any]:
    """A consent as the rules read it: given before the person's first stimulus, its time is no matter."""
    at = None if start is not None and consent.at <= start else consent.at.isoformat()
    return [consent.channel, consent.category, consent.granted, at]


def _paths(text: str, used: set[tuple[str, ...]], shown: set[tuple[str, ...]]) -> None:
    for expression in (False, True):
        try:
            found = read_paths(text, expression)
        except TemplateSyntaxError:  # not a template, or not an expression: it reads nothing as one
            continue
        used |= found.used
        shown |= found.shown


class _Node:
    """One message of a class's paths: its chances and a child per outcome drawn; or a leaf."""

    __slots__ = ("chances", "children", "path", "slot")

    def __init__(self) -> None:
        self.chances: Chances | None = None
        self.slot = 0  # which of the person's draws decides it (outcomes.slot)
        self.children: dict[int, _Node] = {}
        self.path: int | None = None

    def child(self, outcome: int) -> _Node:
        found = self.children.get(outcome)
        if found is None:
            found = self.children[outcome] = _Node()
        return found


Walk = Callable[[Callable[[Chances, int], int]], Path]
"""Evaluates the class's representative with the given outcome picker (engine.forecast.path.walk)."""


class PathTree:
    """The paths of one class of alike people, evaluated as draws first lead to them."""

    __slots__ = ("evaluated", "index", "root", "walk")

    def __init__(self, walk: Walk, index: Callable[[Path], int]) -> None:
        self.root = _Node()
        self.walk = walk
        self.index = index
        self.evaluated = 0

    def path(self, root_draw: int) -> int:
        """The path (its `index`) of the person-run whose draws come from `root_draw` (outcomes.run_seed).
        Runs for every person-run: a loop over plain attributes."""
        node = self.root
        while node.path is None:
            chances = node.chances
            if chances is None:
                return self._evaluate(root_draw)
            node = node.child(bisect_right(chances.cuts, draw(root_draw, node.slot)))
        return node.path

    def _evaluate(self, root_draw: int) -> int:
        node = self.root

        def choose(chances: Chances, ordinal: int) -> int:
            nonlocal node
            node.chances, node.slot = chances, slot(chances.channel, ordinal)
            picked = chances.outcome(draw(root_draw, node.slot))
            node = node.child(picked)
            return picked

        path = node.path = self.index(self.walk(choose))
        self.evaluated += 1
        return path
