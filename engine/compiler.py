"""Validated `Journey` -> `CompiledJourney`: a networkx DiGraph plus everything the
runtime needs precompiled (expressions, templates, step order), so nothing is looked
up by name or parsed while events flow.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx
from jinja2 import TemplateSyntaxError

from channels.mms import mms_problems
from channels.rcs import rcs_problems
from channels.yaml_lines import Located, did_you_mean
from engine.errors import EvaluationError, JourneyDefinitionError, Problem
from engine.events import FEEDBACK_STATUSES, INBOUND, looks_like_feedback
from engine.expressions import (
    DIGEST,
    NAMES,
    Environments,
    Expression,
    Layout,
    Template,
    compile_tree,
    foreign_names,
    is_template,
    limit_warning,
    render_tree,
    suggest_name,
    syntax_error,
)
from engine.loader import Unchecked, UncheckedMessage, compose, draft_journey, validate_journey
from engine.model import (
    BEST_TIME,
    CHANNELS,
    HHMM,
    BranchStep,
    DigestStep,
    ExitStep,
    Journey,
    SendStep,
    SplitStep,
    Step,
    ThrottleStep,
    Variant,
    WaitForStep,
    WaitStep,
    format_duration,
)
from engine.partials import Partials, TemplateSource
from engine.sandbox import DEFAULT_RECIPIENT, RECIPIENT

END = "(end)"
WAITING_TYPES = ("wait", "wait_for", "digest")
HTML_FIELDS = {"email": ("html",)}  # content rendered as HTML: what a template inserts there is escaped
FieldPath = tuple[str | int, ...]
Found = list[tuple[FieldPath, str]]
Rules = Callable[[Mapping[str, Any], Callable[[str], bool]], tuple[Found, Found]]
CONTENT_RULES: Mapping[str, Rules] = {"rcs": lambda content, known: (rcs_problems(content, known), []),
                                      "mms": mms_problems}
"""A channel's own limits on its content as (errors, warnings): checked by `journey validate` on
what is known before rendering (a template's text is not), and on every render."""
Rewrite = Callable[[str, Any], Any]
"""A channel's rendered content changed before it is checked: `(channel, content) -> content`."""


@dataclass(frozen=True, slots=True, eq=False)
class CompiledJourney:
    """A journey ready to run. Instances keep the one they entered with (by `version`)."""

    definition: Journey
    graph: nx.DiGraph
    source: str
    version: str
    steps: Mapping[str, Step]
    expressions: Mapping[str, Expression]
    templates: Mapping[str, Mapping[str, Any]] = field(repr=False)
    text: str = field(default="", repr=False)  # the YAML it was compiled from: stored with each version
    warnings: tuple[Problem, ...] = ()  # what `journey validate` points out without refusing the file
    variants: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict, repr=False)
    """Per message, its content per locale (`fr`, `fr-CA`) per channel: what `locales:` replaces."""
    partials: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The files of `templates/` it includes or wraps emails in, by name: kept with each version."""

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def first_step(self) -> str:
        return self.definition.steps[0].id

    def step(self, step_id: str) -> Step:
        return self.steps[step_id]

    def following(self, step_id: str) -> str | None:
        """The step an unconditional move from `step_id` reaches; None ends the journey."""
        target = self.graph.nodes[step_id]["following"]
        return None if target == END else str(target)

    def resolve(self, target: str | None, step_id: str) -> str | None:
        """An explicit target, or the following step when the author left it out."""
        return target if target is not None else self.following(step_id)

    def expression(self, key: str) -> Expression | None:
        return self.expressions.get(key)

    def render_channels(self, message: str, channels: Collection[str], context: Mapping[str, Any],
                        rewrite: Rewrite | None = None) -> Rendered:
        """The content of each of `channels` the message has, in the variant of the reader's locale
        closest to it (`fr-CA`, then `fr`, else the default content), and the error of each that failed.
        `rewrite` (the tracked links) changes a rendered content before its limits are checked."""
        rendered = Rendered({}, {}, {})
        variants = self.variants.get(message) or {}
        chain = _closest(context, variants) if variants else ()
        for channel, tree in self.templates[message].items():
            if channel not in channels:
                continue
            if chain:
                tag = next((t for t in chain if channel in variants[t]), None)
                if tag is not None:
                    tree = variants[tag][channel]
                    rendered.locales[channel] = tag
            try:
                content = render_tree(tree, context)
                rendered.contents[channel] = _within_limits(channel, rewrite(channel, content) if rewrite else content)
            except EvaluationError as exc:
                rendered.errors[channel] = str(exc)
        return rendered


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message's content per channel, the error of each channel that failed, and the locale of the
    variant each came from (a channel absent from `locales` used the message's default content)."""

    contents: dict[str, Any]
    errors: dict[str, str]
    locales: dict[str, str]


def _within_limits(channel: str, content: Any) -> Any:
    """Rendered content, once its channel's limits hold (a template may render too long)."""
    rules = CONTENT_RULES.get(channel)
    if rules is not None and isinstance(content, Mapping):
        found = rules(content, lambda text: True)[0]
        if found:
            raise EvaluationError("; ".join(f"{_dotted(path)}: {message}" for path, message in found))
    return content


def _closest(context: Mapping[str, Any], variants: Mapping[str, Any]) -> tuple[str, ...]:
    """The message's variants for the reader's locale, closest first: `zh-Hant-TW`, `zh-Hant`, `zh`."""
    recipient = context.get(RECIPIENT, DEFAULT_RECIPIENT)
    parts = recipient.locale.split("-")
    return tuple(tag for tag in ("-".join(parts[:end]) for end in range(len(parts), 0, -1)) if tag in variants)


def load_text(text: str, file: str, templates: TemplateSource | None = None) -> CompiledJourney:
    """Compile journey YAML text; `file` is only used to name the source in errors, `templates` is
    where its partials and layouts come from (none: a template that includes one is refused).

    Raises with every problem at once: when the file has structural problems, the parts of it
    that are well-formed (`draft_journey`) still get the cross-reference checks in the same run."""
    located, problems = compose(text, file)
    journey, more = validate_journey(located) if located.data is not None or not problems else (
        None, []
    )
    problems += more
    draft = journey if journey is not None else draft_journey(located)
    checker = _Checker(located, draft, templates or TemplateSource(kept={})) if draft is not None else None
    compiled = checker.run() if checker is not None else None
    problems += checker.problems if checker is not None else []
    if compiled is None or problems:
        raise JourneyDefinitionError(sorted(set(problems)) or [located.problem((), "empty journey file")])
    return replace(compiled, version=version_of(compiled.definition, compiled.partials), text=text)


def version_of(definition: Journey, partials: Mapping[str, str] | None = None) -> str:
    """A journey's version: a digest of what it does, not of its text, so an edit to comments,
    spacing, key order or quoting is not a new version. Values equal to their defaults are left
    out, so a release that adds an optional key to the language does not make every unchanged
    journey a new version on its next deploy. The partials and layouts it uses are part of it: an
    edited footer is a new version, and the instances that entered with the old one keep it."""
    doc: Any = definition.model_dump(mode="json", exclude_defaults=True)
    if partials:
        doc = {"journey": doc, "templates": dict(partials)}
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def load_file(path: str | Path) -> CompiledJourney:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JourneyDefinitionError([Problem(str(path), 1, f"cannot read file: {exc}")]) from exc
    return load_text(text, str(path), TemplateSource.beside(path))


def journey_files(paths: list[str | Path]) -> list[Path]:
    """Expand folders into their *.yaml / *.yml files, sorted (not those of a `templates/` folder,
    which are partials); files are kept as given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")
                                and "templates" not in p.relative_to(path).parts[:-1]))
        else:
            found.append(path)
    return found


def load_paths(paths: list[str | Path]) -> list[CompiledJourney]:
    """Load every journey under `paths`; all problems of all files in one error."""
    problems: list[Problem] = []
    compiled: list[CompiledJourney] = []
    seen: dict[str, str] = {}
    for path in journey_files(paths):
        try:
            journey = load_file(path)
        except JourneyDefinitionError as exc:
            problems.extend(exc.problems)
            continue
        if journey.id in seen:
            problems.append(Problem(str(path), 1, f"journey id '{journey.id}' is also used by {seen[journey.id]}"))
        seen[journey.id] = str(path)
        compiled.append(journey)
    if problems:
        raise JourneyDefinitionError(problems)
    return compiled


class _Checker:
    """Collects every semantic problem of one journey while building its graph."""

    def __init__(self, located: Located, journey: Journey, templates: TemplateSource) -> None:
        self.located = located
        self.journey = journey
        self.partials = Partials(templates)
        self.envs = Environments()
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self.index: dict[str, int] = {}  # a step id -> where it is (first) defined
        self.nodes: list[Any] = []  # the graph node of each step: its id; (id, i) for a repeat of an id
        for i, step in enumerate(journey.steps):
            self.nodes.append(step.id if step.id not in self.index else (step.id, i))
            self.index.setdefault(step.id, i)
        self.at = {node: i for i, node in enumerate(self.nodes)}
        self.graph: nx.DiGraph = nx.DiGraph(id=journey.id)
        self.expressions: dict[str, Expression] = {}
        digests = any(isinstance(step, DigestStep) for step in journey.steps)
        self.names = (*NAMES, DIGEST) if digests else NAMES  # what templates and expressions may read

    def run(self) -> CompiledJourney:
        self._check_duplicate_ids()
        self._add_nodes()
        for i, step in enumerate(self.journey.steps):
            self._add_edges(i, step)
        self._check_unreachable()
        self._check_cycles()
        self._compile_journey_expressions()
        templates, variants = self._compile_messages()
        self._check_sends()
        self._check_waits_and_digests()
        self._check_feedback_names()
        return CompiledJourney(
            self.journey, self.graph, self.located.file, "", {s.id: s for s in self.journey.steps},
            self.expressions, templates, warnings=tuple(self.warnings), variants=variants,
            partials=dict(self.partials.used),
        )

    def _report(self, path: tuple[str | int, ...], message: str) -> None:
        self.problems.append(self.located.problem(path, message))

    def _check_duplicate_ids(self) -> None:
        """A repeat is its own node in the graph, as if renamed: it adds no false cycle or edge."""
        for i, step in enumerate(self.journey.steps):
            if self.nodes[i] != step.id:
                line = self.located.line(("steps", self.index[step.id], "id"))
                self._report(("steps", i, "id"), f"step id '{step.id}' repeats (first at line {line})")

    def _add_nodes(self) -> None:
        nodes = self.nodes
        for i, step in enumerate(self.journey.steps):
            following = nodes[i + 1] if i + 1 < len(nodes) else END
            self.graph.add_node(nodes[i], type=step.type, line=self.located.line(("steps", i)), following=following)
        self.graph.add_node(END, type="end", line=0, following=END)

    def _add_edges(self, i: int, step: Step) -> None:
        for key_path, target, label in _targets(step):
            if target is None:
                self._edge(self.nodes[i], self.graph.nodes[self.nodes[i]]["following"], label)
            elif target not in self.index:
                hint = did_you_mean(target, self.index)
                self._report(("steps", i, *key_path), f"step '{step.id}': {key_path[0]} '{target}' is not a step{hint}")
            else:
                self._edge(self.nodes[i], target, label)

    def _edge(self, source: Any, target: Any, label: str) -> None:
        if self.graph.has_edge(source, target):
            label = f"{self.graph.edges[source, target]['label']} / {label}"
        self.graph.add_edge(source, target, label=label)

    def _check_unreachable(self) -> None:
        if any(" is not a step" in p.message for p in self.problems):
            return  # a mistyped target makes its intended step look unreachable: say it once
        if not self.nodes or any(isinstance(s, Unchecked) for s in self.journey.steps):
            return  # where a malformed step leads is not known
        reachable = nx.descendants(self.graph, self.nodes[0]) | {self.nodes[0]}
        for i, step in enumerate(self.journey.steps):
            if step.id not in reachable and self.nodes[i] == step.id:
                self._report(("steps", i, "id"), f"step '{step.id}' is unreachable: no step leads to it")

    def _check_cycles(self) -> None:
        for component in nx.strongly_connected_components(self.graph):
            looping = len(component) > 1 or any(self.graph.has_edge(n, n) for n in component)
            if not looping or any(self.graph.nodes[n]["type"] in WAITING_TYPES for n in component):
                continue
            ordered = [self.journey.steps[i].id for i in sorted(self.at[n] for n in component)]
            cycle = " -> ".join([*ordered, ordered[0]])
            self._report(
                ("steps", min(self.at[n] for n in component), "id"),
                f"step '{ordered[0]}': cycle {cycle} has no wait or wait_for step: it would loop forever",
            )

    def _compile_journey_expressions(self) -> None:
        j = self.journey
        self._expr("trigger.when", j.trigger.when, ("trigger", "when"))
        self._expr("trigger.audience", j.trigger.audience, ("trigger", "audience"))
        self._expr("instance_key", j.instance_key, ("instance_key",))
        for i, step in enumerate(j.steps):
            for key, source, path in _step_expressions(step):
                self._expr(f"{step.id}.{key}", source, ("steps", i, *path))

    def _expr(self, key: str, source: str | None, path: tuple[str | int, ...]) -> None:
        if source is None:
            return
        try:
            self.expressions[key] = Expression(source)
            names = foreign_names(source, expression=True, allowed=self.names)
            limits = limit_warning(source, expression=True)
        except TemplateSyntaxError as exc:
            self._report(path, f"{_where(path, self.journey)}expression {source!r} does not parse: {syntax_error(exc)}")
            return
        if limits is not None:
            self.warnings.append(self.located.problem(path, f"{_where(path, self.journey)}expression {source!r}: "
                                                            f"{limits}"))
        for name, read in names.items():
            self._report(path, f"{_where(path, self.journey)}expression {source!r}: {_unknown(name, read, self.names)}")

    def _compile_messages(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]]]:
        """Every message's content per channel, and per locale of its variants: each checked alike."""
        templates: dict[str, dict[str, Any]] = {}
        variants: dict[str, dict[str, dict[str, Any]]] = {}
        self._follow_partials()
        for name, message in self.journey.messages.items():
            raw = message.raw if isinstance(message, UncheckedMessage) else None
            if not message.channels() and raw is None:
                self._report(("messages", name), f"message '{name}' has no content for any channel")
            templates[name] = self._compile_variant(name, (), message if raw is None else raw)
            locales = message.locales if raw is None else raw.get("locales")
            for tag, variant in (locales.items() if isinstance(locales, dict) else ()):
                variants.setdefault(name, {})[str(tag)] = self._compile_variant(name, ("locales", str(tag)), variant)
        return templates, variants

    def _contents(self) -> Iterator[tuple[str, tuple[str, ...], dict[str, Any]]]:
        """Every message's content per channel, its default and each variant: (message, where, content)."""
        for name, message in self.journey.messages.items():
            raw = message.raw if isinstance(message, UncheckedMessage) else None
            locales = message.locales if raw is None else raw.get("locales")
            variants: list[tuple[tuple[str, ...], Any]] = [((), message if raw is None else raw)]
            variants += [(("locales", str(t)), v) for t, v in (locales.items() if isinstance(locales, dict) else ())]
            for prefix, variant in variants:
                for channel, content in _channels(variant).items():
                    yield name, (*prefix, channel), content

    def _follow_partials(self) -> None:
        """The templates the messages name (includes, layouts), checked, and the sandboxes that load them."""
        for name, where, content in self._contents():
            layout = content.get("layout") if where[-1] == "email" else None
            if isinstance(layout, str) and (problem := self.partials.layout(layout)) is not None:
                self._report(("messages", name, *where, "layout"), f"message '{name}': {'.'.join(where)}.layout: "
                                                                   f"{problem}")
            for leaf, text in _leaves({k: v for k, v in content.items() if k != "layout"}, where):
                for line, problem in self.partials.references(text):
                    field = ".".join(str(p) for p in leaf)
                    at = f" (line {line} of the text)" if line > 1 else ""
                    self._report(("messages", name, *leaf), f"message '{name}': {field}{at}: {problem}")
        self.problems += self.partials.problems
        self.envs = Environments(self.partials.used)

    def _compile_variant(self, name: str, prefix: tuple[str, ...], variant: Any) -> dict[str, Any]:
        """One variant's channels compiled (a validated `Variant`, or a draft's mapping as written)."""
        return {channel: self._compile_content(name, (*prefix, channel), content)
                for channel, content in _channels(variant).items()}

    def _compile_content(self, name: str, where: tuple[str, ...], content: dict[str, Any]) -> Any:
        """One channel's content (`where`: `sms`, or `locales.fr.sms`), every template in it checked."""
        compiled: Any = {}
        channel = where[-1]
        layout = content.pop("layout", None) if channel == "email" else None
        try:
            compiled = compile_tree(content, HTML_FIELDS.get(channel, ()), self.envs)
            if isinstance(layout, str) and layout in self.partials.used:
                compiled = Layout(Template(self.partials.used[layout], True, self.envs), compiled)
        except TemplateSyntaxError as exc:
            path = ("messages", name, *where, *_first_bad_leaf(content))
            self._report(path, f"message '{name}': {'.'.join(where)}: template does not parse: {syntax_error(exc)}")
        for leaf, text in _leaves(content, where):
            try:
                names = foreign_names(text, allowed=self.names)
                limits = limit_warning(text)
            except TemplateSyntaxError:
                continue  # reported above
            if limits is not None:
                self.warnings.append(self.located.problem(("messages", name, *leaf), f"message '{name}': {limits}"))
            for unknown, read in names.items():
                self._report(("messages", name, *leaf),
                             f"message '{name}': {_dotted(leaf)}: {_unknown(unknown, read, self.names)}")
        self._check_limits(name, where, content)
        return compiled

    def _check_limits(self, name: str, where: tuple[str, ...], content: Any) -> None:
        """The channel's limits on what is known before rendering: a template's length is not."""
        rules = CONTENT_RULES.get(where[-1])
        if rules is None or not isinstance(content, Mapping):
            return
        errors, warnings = rules(content, lambda text: not is_template(text))
        for path, message in errors:
            self._report(("messages", name, *where, *path), f"message '{name}': {_dotted((*where, *path))}: "
                                                            f"{message}")
        for path, message in warnings:
            self.warnings.append(self.located.problem(("messages", name, *where, *path),
                                                      f"message '{name}': {_dotted((*where, *path))}: {message}"))

    def _check_feedback_names(self) -> None:
        """`<channel>.<word>` with no status feedback carries in `word` is an ordinary event that never
        changes a message (and a mistyped `push.opend` would never come): a warning, naming the statuses."""
        j = self.journey
        named: list[tuple[tuple[str | int, ...], str, str | None]] = [(("trigger", "event"), "trigger event",
                                                                       j.trigger.event)]
        for i, step in enumerate(j.steps):
            if isinstance(step, WaitForStep):
                key = "events" if step.events is not None else "event"
                listed = step.events is not None or isinstance(step.event, list)
                named += [(("steps", i, key, *([n] if listed else [])), f"step '{step.id}': event", e)
                          for n, e in enumerate(step.event_types())]
        named += [(("exit_on", i), "exit_on event", e) for i, e in enumerate(j.exit_on)]
        named += [(("goal", "event"), "goal event", j.goal.event)] if j.goal is not None else []
        for path, what, name in named:
            word = looks_like_feedback(name or "", CHANNELS)
            if word is None or word in FEEDBACK_STATUSES or word == "inbound" or name in INBOUND:
                continue
            channel = str(name).partition(".")[0]
            replies = {e.partition(".")[2] for e in INBOUND if e.startswith(f"{channel}.")}
            statuses, hint = ", ".join(sorted(FEEDBACK_STATUSES)), did_you_mean(word, FEEDBACK_STATUSES | replies)
            self.warnings.append(self.located.problem(path, f"{what} '{name}' looks like provider feedback "
                                                            f"(<channel>.<status>) but '{word}' is not a status "
                                                            f"({statuses}): it never changes a message{hint}"))

    def _check_waits_and_digests(self) -> None:
        """A wait_for's `on_event` names its own events; a digest collects trigger events, so the
        journey must be entered by an event."""
        trigger = self.journey.trigger
        for i, step in enumerate(self.journey.steps):
            if isinstance(step, WaitForStep) and isinstance(step.on_event, dict):
                types = step.event_types()
                for event_type in step.on_event:
                    if event_type not in types:
                        hint = did_you_mean(event_type, types)
                        self._report(("steps", i, "on_event", event_type),
                                     f"step '{step.id}': on_event '{event_type}' is not one of its events "
                                     f"({', '.join(types)}){hint}")
            elif isinstance(step, DigestStep) and trigger.event is None:
                self._report(("steps", i, "type"), f"step '{step.id}': a digest collects the journey's trigger "
                                                   f"events, and this journey is entered by audience runs "
                                                   f"({trigger.kind}), not by an event")
        self._digest_key()

    def _digest_key(self) -> None:
        """A digest's `key` makes the instances one per key (as `instance_key` would): an event of
        another key starts its own digest rather than being left out of this one."""
        keyed = [(i, s) for i, s in enumerate(self.journey.steps) if isinstance(s, DigestStep) and s.key]
        for i, step in keyed:
            if self.journey.instance_key is not None:
                self._report(("steps", i, "key"), f"step '{step.id}': key: the journey's instance_key already "
                                                  f"makes one instance, and so one digest, per key: leave key out")
            elif step.key != keyed[0][1].key:
                self._report(("steps", i, "key"), f"step '{step.id}': key: the digests of one journey share "
                                                  f"their key ('{keyed[0][1].key}'), the key of its instances")
        if keyed and self.journey.instance_key is None and f"{keyed[0][1].id}.key" in self.expressions:
            self.expressions["instance_key"] = self.expressions[f"{keyed[0][1].id}.key"]

    def _check_sends(self) -> None:
        messages = self.journey.messages
        for i, step in enumerate(self.journey.steps):
            if not isinstance(step, SendStep):
                continue
            if step.message not in messages:
                hint = did_you_mean(step.message, messages)
                text = f"step '{step.id}': message '{step.message}' is not defined{hint}"
                self._report(("steps", i, "message"), text)
                continue
            available = messages[step.message].channels()
            candidates: list[str] = list(step.channels or available)
            if available and not set(candidates) & set(available):
                self._report(
                    ("steps", i, "channels"),
                    f"step '{step.id}': message '{step.message}' has no content for any of its "
                    f"channels: {', '.join(candidates)}",
                )


def _channels(variant: Any) -> dict[str, dict[str, Any]]:
    """A variant's content per channel: a validated `Variant`, or a draft's mapping as written."""
    if isinstance(variant, Variant):
        return {c: getattr(variant, c).model_dump(exclude_none=True) for c in variant.channels()}
    return {c: dict(variant[c]) for c in CHANNELS if isinstance(variant, dict) and isinstance(variant.get(c), dict)}


def _targets(step: Step) -> Iterator[tuple[tuple[str | int, ...], str | None, str]]:
    """Every outgoing edge of a step: (yaml key path, target or None = following, label)."""
    if isinstance(step, SendStep | DigestStep):
        yield ("next",), step.next, ""
    elif isinstance(step, WaitStep):
        yield ("next",), step.next, ""
        if step.if_past not in ("go", "exit"):
            yield ("if_past",), step.if_past, "if past"
    elif isinstance(step, ThrottleStep):
        yield ("next",), step.next, f"{step.limit} per {format_duration(step.period)}"
        if step.on_throttled is not None:
            yield ("on_throttled",), step.on_throttled, "throttled"
    elif isinstance(step, WaitForStep):
        yield from _event_targets(step)
        yield ("on_timeout",), step.on_timeout, f"timeout {format_duration(step.timeout)}"
    elif isinstance(step, BranchStep):
        for n, case in enumerate(step.branches):
            yield ("branches", n, "next"), case.next, case.when
        yield ("default",), step.default, "default"
    elif isinstance(step, SplitStep):
        total = sum(p.weight for p in step.paths)
        for n, path in enumerate(step.paths):
            yield ("paths", n, "next"), path.next, f"{100 * path.weight / total:g}%"
    elif isinstance(step, ExitStep):
        return


def _event_targets(step: WaitForStep) -> Iterator[tuple[tuple[str | int, ...], str | None, str]]:
    """One edge per event type given its own step (`on_event: {type: step}`), else one for all."""
    types = step.event_types()
    if not isinstance(step.on_event, dict):
        yield ("on_event",), step.on_event, f"on {' / '.join(types)}"
        return
    for event_type in types:
        mapped = event_type in step.on_event
        yield ("on_event", event_type) if mapped else ("on_event",), step.on_event.get(event_type), f"on {event_type}"
    for event_type, target in step.on_event.items():
        if event_type not in types:  # reported by the checker: kept for where it leads
            yield ("on_event", event_type), target, f"on {event_type}"


def _step_expressions(step: Step) -> Iterator[tuple[str, str, tuple[str | int, ...]]]:
    if isinstance(step, WaitForStep) and step.when:
        yield "when", step.when, ("when",)
    elif isinstance(step, BranchStep):
        for n, case in enumerate(step.branches):
            yield f"branches.{n}", case.when, ("branches", n, "when")
    elif isinstance(step, WaitStep) and step.until and not HHMM.match(step.until) and step.until != BEST_TIME:
        yield "until", step.until, ("until",)
    elif isinstance(step, SendStep) and step.expires:
        yield "expires", step.expires, ("expires",)
    elif isinstance(step, DigestStep | ThrottleStep) and step.key:
        yield "key", step.key, ("key",)


def _where(path: tuple[str | int, ...], journey: Journey) -> str:
    if path[0] == "steps" and isinstance(path[1], int):
        return f"step '{journey.steps[path[1]].id}': "
    return f"{path[0]}: "


def _unknown(name: str, read: str, allowed: tuple[str, ...]) -> str:
    if name == DIGEST:
        return "'digest' is what a digest step collected, and this journey has no digest step"
    return f"unknown name '{name}'; use {', '.join(allowed[:-1])} or {allowed[-1]}{suggest_name(read)}"


def _dotted(path: FieldPath) -> str:
    """`rcs.suggestions[1].text`: a field as an author reads it."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _leaves(content: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string leaf of message content with its path: nested cards and lists included."""
    if isinstance(content, str):
        yield path, content
    items = content.items() if isinstance(content, dict) else enumerate(content) if isinstance(content, list) else ()
    for key, value in items:
        yield from _leaves(value, (*path, key))


def _first_bad_leaf(content: Any) -> tuple[str | int, ...]:
    """The path of the first string leaf that fails to parse, for its line number."""
    for path, text in _leaves(content):
        try:
            compile_tree(text)
        except TemplateSyntaxError:
            return path
    return ()
