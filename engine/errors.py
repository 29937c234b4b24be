"""The project's error tree. Every error a user can cause is one of these, with the
user's own words (file, line, field, id) in its message::

    JourneyError (Exception)
    ├── JourneyDefinitionError (ValueError)   a journey file is malformed or inconsistent
    ├── JourneyNotFoundError (LookupError)    a journey id names no loaded journey
    ├── EventError (ValueError)               an event is malformed (names the field)
    └── EvaluationError (RuntimeError)        an expression or template failed at run time
        └── TemplateRenderError               a message template could not be rendered

Errors from the channel layer (`channels.PolicyError`, `channels.ProfileError`) subclass
ValueError too, so callers can catch "bad input" in one place.
"""

from __future__ import annotations

from channels.yaml_lines import Problem as Problem  # one file:line type for journeys, policy and providers


class JourneyError(Exception):
    """Base of every error the engine raises on purpose."""


class JourneyDefinitionError(JourneyError, ValueError):
    """A journey file cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class JourneyNotFoundError(JourneyError, LookupError):
    """A journey id was asked for that no loaded journey has."""


class EventError(JourneyError, ValueError):
    """An event is malformed; the message names the offending field."""


class EvaluationError(JourneyError, RuntimeError):
    """An expression failed at run time (missing variable, wrong type)."""


class TemplateRenderError(EvaluationError):
    """A message template failed to render: the send fails with `template_error`."""
