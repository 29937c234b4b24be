"""Partials and layouts: the `templates/` folder beside the journeys (`source.py`), and what a
journey's templates name in it, followed and checked when the journey is compiled (`follow.py`)."""

from engine.partials.follow import LAYOUT_NAMES, Partials
from engine.partials.source import FOLDER, TemplateSource

__all__ = ["FOLDER", "LAYOUT_NAMES", "Partials", "TemplateSource"]
