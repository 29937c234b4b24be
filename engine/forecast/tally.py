"""What a forecast counts: how many person-runs came to each path, per run and segment, for each
version compared. A worker's `Tally` is plain numbers and paths (picklable), merged in the parent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from engine.forecast.path import Path


@dataclass
class Tally:
    """Per version: how many person-runs took each path (`counts[(run, segment, path index)]`);
    the paths by index; the people per segment; how many paths were evaluated."""

    versions: int
    paths: list[Path] = field(default_factory=list)
    counts: list[Counter[tuple[int, str | None, int]]] = field(default_factory=list)
    people: Counter[str | None] = field(default_factory=Counter)
    evaluated: int = 0
    _index: dict[Path, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [Counter() for _ in range(self.versions)]

    def index(self, path: Path) -> int:
        """The path's number in this tally (each distinct path is kept once)."""
        found = self._index.get(path)
        if found is None:
            found = self._index[path] = len(self.paths)
            self.paths.append(path)
        return found

    def merge(self, other: Tally) -> None:
        """Add another worker's tally (its paths renumbered into this one's)."""
        renumber = [self.index(path) for path in other.paths]
        for mine, theirs in zip(self.counts, other.counts, strict=True):
            for (run, segment, path), n in theirs.items():
                mine[(run, segment, renumber[path])] += n
        self.people.update(other.people)
        self.evaluated += other.evaluated

    def __getstate__(self) -> dict[str, object]:
        return {"versions": self.versions, "paths": self.paths, "counts": self.counts, "people": self.people,
                "evaluated": self.evaluated}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._index = {path: n for n, path in enumerate(self.paths)}

    def of(self, version: int, segment: str | None | _All) -> Iterator[tuple[int, Path, int]]:
        """(run, path, count) of one version, for one segment or all (`ALL`)."""
        for (run, seg, path), n in self.counts[version].items():
            if segment is ALL or seg == segment:
                yield run, self.paths[path], n

    def segments(self) -> Sequence[str | None]:
        return sorted(self.people, key=lambda s: (s is None, s or ""))


class _All:
    pass


ALL = _All()
