"""PostgreSQL: a pooled connection is pinged before use only when it sat idle long enough to
have been dropped unseen.

SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip before every transaction and
every read, a quarter of the statements a busy worker runs (on Citus, a round trip to the
coordinator in front of each routed statement). A busy engine has each connection back in use
within milliseconds of its return, and a server restart or an idle-timeout that drops it in
those milliseconds is rare; a connection that sat in the pool `after` seconds or more is pinged
as `pool_pre_ping` would, and replaced if the ping fails. One that breaks between uses fails its
statement instead: SQLAlchemy then replaces every connection of the pool older than the failure,
and the store raises `StoreError`, which every loop of the engine retries.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

IDLE_BEFORE_PING = 1.0  # seconds a connection sits in the pool before its next use pings it
_RETURNED = "journey_returned_at"  # the connection's `info` key: when it went back to the pool


class IdlePing:
    """The pool's checkout and checkin watched: a connection idle `after` seconds is pinged."""

    def __init__(self, dialect: Any, after: float = IDLE_BEFORE_PING) -> None:
        self.dialect = dialect
        self.after = after
        self.pings = 0  # pings sent (each a statement on the server)
        self._counting = threading.Lock()

    @classmethod
    def watch(cls, engine: Engine, after: float = IDLE_BEFORE_PING) -> IdlePing:
        """Ping `engine`'s connections that sat idle before their next use, from now on."""
        ping = cls(engine.dialect, after)
        event.listen(engine, "checkin", ping._returned)
        event.listen(engine, "checkout", ping._checked_out)
        return ping

    def _returned(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED] = time.monotonic()  # not the clock's time: a duration, never stored

    def _checked_out(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        """A new connection (nothing recorded yet) is fresh; one idle too long must answer."""
        returned = record.info.get(_RETURNED)
        if returned is None or time.monotonic() - returned < self.after:
            return
        with self._counting:
            self.pings += 1
        try:
            self.dialect.do_ping(dbapi_connection)  # as pool_pre_ping's: outside any transaction
        except self.dialect.loaded_dbapi.Error as exc:  # the pool replaces the connection and tries again
            raise DisconnectionError(f"a pooled connection did not answer its ping: {exc}") from exc
