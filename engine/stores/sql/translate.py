"""SQLAlchemy's exceptions become the project's at the store's edge, so nothing above
`engine/stores/` knows which database library is underneath.

A lost or refused connection, a pool timeout or SQLite's "database is locked" is a
`TemporaryStoreError` (the same call may work later: an outage); a value the database refuses
(an integrity or data error) is a `StoreValueError` (the data's fault, never an outage); anything
else the database or SQLAlchemy raises is a `StoreError`. The message names the database and the driver's own
words, never the statement's parameters (they may hold a phone number or an address).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from engine.errors import StoreError, StoreValueError, TemporaryStoreError

P = ParamSpec("P")
R = TypeVar("R")
_TEMPORARY = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)


def store_error(exc: SQLAlchemyError, where: str) -> StoreError:
    """The project's error for `exc`, naming `where` (the database URL, without its password)."""
    detail = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else str(exc).split("\n")[0]
    temporary = isinstance(exc, _TEMPORARY) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)
    kind = TemporaryStoreError if temporary else StoreValueError if isinstance(exc, IntegrityError | DataError) \
        else StoreError
    return kind(f"{where}: {type(exc).__name__}: {detail.strip()}")


@contextmanager
def translated(where: str) -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise store_error(exc, where) from exc


def translating(method: Callable[P, R]) -> Callable[P, R]:
    """For a store method: its SQLAlchemy errors are raised as `StoreError`s naming the store's URL."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except SQLAlchemyError as exc:
            raise store_error(exc, _where(args[0])) from exc

    return wrapper


def _where(store: Any) -> str:
    safe = getattr(store, "safe_url", None)
    return str(safe) if safe is not None else "the database"


URL_FORMS = ("sqlite:///", "postgresql+psycopg://")
"""The database URLs journey-engine opens: a SQLite file, or PostgreSQL through psycopg 3."""


def check_url(url: str) -> str:
    """`url` if it is one of `URL_FORMS`; else a StoreError that shows the forms that work."""
    if url.startswith(URL_FORMS):
        return url
    scheme = url.partition("://")[0] if "://" in url else url
    raise StoreError(f"{scheme}://...: not a database URL journey-engine opens; use sqlite:///path/to/file.db "
                     "(sqlite:////absolute/path.db) or postgresql+psycopg://user:password@host:5432/database")
