"""Where a journey's partials and layouts come from: the `templates/` folder beside the journeys,
or, for a version compiled again from the database, the sources kept with it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import TemplateNotFound
from jinja2.loaders import split_template_path

FOLDER = "templates"
MAX_BYTES = 1_000_000  # one template file


class TemplateSource:
    """The templates a journey may use: a folder's files, or the sources kept with a stored version."""

    def __init__(self, folder: Path | None = None, kept: Mapping[str, str] | None = None) -> None:
        self.folder = folder
        self.kept = dict(kept or {})

    @classmethod
    def beside(cls, journey_file: Path) -> TemplateSource:
        """The `templates/` folder in the journey file's own folder."""
        return cls(journey_file.parent / FOLDER)

    def where(self, name: str) -> str:
        """How problems name the file: its path, or `templates/<name>` for a stored version."""
        return f"{self.folder}/{name}" if self.folder is not None else f"{FOLDER}/{name}"

    def names(self) -> list[str]:
        if self.folder is None:
            return sorted(self.kept)
        if not self.folder.is_dir():
            return []
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())

    def read(self, name: str) -> str | None:
        """The template's text, or None when there is no such template (or it cannot be read)."""
        if self.folder is None:
            return self.kept.get(name)
        try:
            path = self.folder.joinpath(*split_template_path(name))  # no `..`: a name stays in the folder
            if not path.is_file() or path.stat().st_size > MAX_BYTES:
                return None
            return path.read_text(encoding="utf-8")
        except (TemplateNotFound, OSError, UnicodeDecodeError):
            return None
