"""`--help` that reads as a person expects, whatever typer's release: `journey graph [OPTIONS] FILE`,
flags without a type, options with the metavar each names (`--db URL`).

Recent typer writes a required argument as `{file}` in the usage line and a flag as `--json
<bool>`; these classes take the braces off and give flags (`--help` included) no type. They
override two methods click itself defines (`collect_usage_pieces`, `get_help_option`), which
every typer release keeps."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


class _Readable:
    """Mixed into typer's command and group classes."""

    params: list[Any]

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)  # type: ignore[misc]
        return [piece.replace("{", "").replace("}", "") for piece in pieces]

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option

    def _flags_without_type(self) -> None:
        """Flags show no type; an argument shows its metavar alone (`FILE`, not `FILE <path>`)."""
        for param in self.params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
            elif getattr(param, "param_type_name", "") == "argument" and param.metavar is not None:
                param.display_type_rich = lambda ctx: None


class Command(_Readable, TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flags_without_type()


class Group(_Readable, TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flags_without_type()


class App(typer.Typer):
    """A `typer.Typer` whose commands and groups are the readable ones."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)
