"""The one place that wires store + runtime + channels: events and timers in, state out.

`Engine` (`engine.py`) is the public Python API (`Engine(...).ingest(event)`) and keeps the
order of the steps; each step is a collaborator: the journeys it runs (`catalog.py`), STOP /
START / HELP (`keywords.py`), provider feedback and replies (`feedback.py`), which instances an
event is for and who enters (`routing.py`), RCS capability asked while deciding
(`capability.py`), one instance failing alone (`faults.py`), what a batch reads and keeps of its
users, as far as the journeys need (`recall.py`). The simulator runs it on a memory store and a
virtual clock, the server on the SQL store and the wall clock.
"""

from engine.service.catalog import Catalog, VersionSource
from engine.service.engine import Engine, as_seen
from engine.steps.needs import CAP_WINDOW

__all__ = ["CAP_WINDOW", "Catalog", "Engine", "VersionSource", "as_seen"]
