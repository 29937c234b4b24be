"""The project's error tree: every exception journey-engine raises on purpose is one of these,
with the user's own words (file, line, field, id) in its message::

    JourneyError (Exception)
    ├── JourneyDefinitionError (ValueError)   a journey file is malformed or inconsistent
    ├── JourneyNotFoundError (LookupError)    a journey id names no loaded journey
    ├── StateConflictError (ValueError)       the journey's state refuses the request (HTTP 409)
    │   ├── RunRefusedError                   an audience run cannot start (the journey is entered by events,
    │   │                                     or is paused or stopped)
    │   └── JourneyStoppedError               a stopped journey cannot be resumed or paused: deploy a new version
    ├── EventError (ValueError)               an event is malformed (names the field)
    │   └── InputError                        a line of an events or profiles file is bad (file:line)
    ├── EvaluationError (RuntimeError)        an expression or template failed at run time
    │   ├── TemplateRenderError               a message template could not be rendered
    │   └── RenderLimitError (OverflowError)  a render went past one of its limits (names the limit)
    ├── StoreError (RuntimeError)             the database refused or failed (names the URL or table)
    │   ├── TemporaryStoreError               the database is unreachable for now: try again later (an outage)
    │   └── StoreValueError (ValueError)      the database refused a value (a constraint, a range): the data's
    │                                         fault, a 422, never an outage
    ├── BenchError (RuntimeError)             `journey bench`'s own harness failed (its server did not start)
    └── HttpError                             an HTTP request cannot be served (carries its status)

    channels (the channel layer never imports engine, so its errors live beside their code):
    ValueError
    ├── channels.FileError                    a policy or providers file is bad (file:line lines)
    │   ├── channels.PolicyError
    │   └── channels.providers.ProvidersError
    ├── channels.ProfileError                 a profile or consent record is malformed (names the field)
    └── channels.SelectionError               a message asks for a channel the policy cannot serve
    Exception
    └── channels.providers.DeliveryError      a provider did not take a message
        ├── TemporaryDeliveryError            retried with backoff, next provider first
        └── PermanentDeliveryError            never retried; may mark the address unusable

Foreign exceptions (SQLAlchemy, httpx, vendor SDKs) are translated where they enter, with
`raise ... from exc`, so callers catch these and nothing else.
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


class StateConflictError(JourneyError, ValueError):
    """What was asked conflicts with the journey's state; the message says what would work."""


class JourneyStoppedError(StateConflictError):
    """A stopped journey was asked to resume or pause: a stop is final for its versions, and a new
    version deployed (a reload or restart with a changed file) starts it again."""


class RunRefusedError(StateConflictError):
    """An audience run was asked of a journey that takes none now: one entered by events, a paused
    or a stopped one. The message says which."""


class EventError(JourneyError, ValueError):
    """An event is malformed; the message names the offending field."""


class InputError(EventError):
    """An events or profiles file has a bad line; the message is `file:line: field: problem`."""


class EvaluationError(JourneyError, RuntimeError):
    """An expression failed at run time (missing variable, wrong type)."""


class TemplateRenderError(EvaluationError):
    """A message template failed to render: the send fails with `template_error`."""


class RenderLimitError(EvaluationError, OverflowError):
    """A template or expression went past one of the limits that keep every render small (loop steps,
    characters built, the size of one value or of the output, the digits of a number); the message
    names the limit. The send fails with `template_error`, as for any template that cannot render."""


class StoreError(JourneyError, RuntimeError):
    """The database is unusable or refused a statement (newer schema, bad URL, constraint); the
    message says which. Not the fault of the events being processed, so hosts retry later."""


class TemporaryStoreError(StoreError):
    """The database could not be reached or dropped the connection: the same call may work later."""


class StoreValueError(StoreError, ValueError):
    """The database refused a value it was given (an integrity or data error): the request's or the
    event's fault, answered 422 and never taken for an outage."""


class BenchError(JourneyError, RuntimeError):
    """`journey bench` could not measure: the `journey serve` it started exited or never became
    healthy. Not a figure of the engine's, so it is said in words, with the server's log."""


class HttpError(JourneyError):
    """An HTTP request that cannot be served, with the status to answer and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
