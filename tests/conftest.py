"""Fixtures shared by every test folder: a real, throwaway PostgreSQL server.

`postgres_url` starts one server per test session: `initdb` into a temporary directory,
`pg_ctl start` on a free loopback port with its socket in that directory, fsync off.
`postgres_fresh_db_url` gives each test its own database on that server, so tests never
see each other's rows. Without PostgreSQL binaries the tests that use them skip locally
and fail in CI (env CI=true), so a CI run can never pass without having run them.

initdb and postgres refuse to run as root: as root, they run as the `postgres` user if
there is one (else `nobody`), through `runuser` (else `su`), in a directory chowned to it.
Set JOURNEY_PG_BINDIR to pick a PostgreSQL installation explicitly.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

PG_DATABASE = "journey_test"
_fresh_db_numbers = itertools.count(1)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_or_fail(message: str) -> NoReturn:
    """Skip locally; in CI a missing prerequisite is a failure, never a silent skip."""
    if in_ci():
        pytest.fail(f"{message} (CI=true: failing instead of skipping)", pytrace=False)
    pytest.skip(message)


def _version_key(bindir: str) -> tuple[int, str]:
    version = Path(bindir).parent.name
    return (int(version) if version.isdigit() else -1, version)


def _candidate_bindirs() -> Iterator[str]:
    if os.environ.get("JOURNEY_PG_BINDIR"):
        yield os.environ["JOURNEY_PG_BINDIR"]
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0:
            yield found.stdout.strip()
    on_path = shutil.which("initdb")
    if on_path:
        yield str(Path(on_path).resolve().parent)
    yield from sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)


def find_pg_bindir() -> Path | None:
    """The first directory holding both initdb and pg_ctl (pg_config may point at a client-only install)."""
    for bindir in _candidate_bindirs():
        path = Path(bindir)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


def _server_user() -> str | None:
    """Whom to run initdb/pg_ctl as: None for ourselves, else an unprivileged account (we are root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--", *argv]
    return ["su", user, "-s", "/bin/sh", "-c", shlex.join(argv)]


def _run(user: str | None, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_as_user(user, argv), cwd=cwd, capture_output=True, text=True, check=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One initdb'd cluster in a temporary directory; start() picks a free port."""

    def __init__(self, bindir: Path, options: str = "") -> None:
        self.bindir = bindir
        self.options = options  # more `-c name=value` for the server (Citus: its preloaded library)
        self.user = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="journey-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)

    def _pg(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return _run(self.user, [str(self.bindir / tool), *args], self.root)

    def initdb(self) -> None:
        done = self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--no-sync", "--locale=C")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def start(self, attempts: int = 3) -> None:
        """Start on a free port; retries with a new port if another process took it meanwhile."""
        for _ in range(attempts):
            self.port = _free_port()
            done = self._launch()
            if done.returncode == 0:
                return
        self._launch_failed(done)

    def _launch(self) -> subprocess.CompletedProcess[str]:
        options = (f"-p {self.port} -k {shlex.quote(str(self.root))} -c listen_addresses=127.0.0.1"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off" + self.options)
        return self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def _launch_failed(self, done: subprocess.CompletedProcess[str]) -> NoReturn:
        log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{log}")

    def halt(self) -> None:
        """Stop the server as an operator would (`pg_ctl stop -m fast`: sessions cut), keeping its data."""
        done = self._pg("pg_ctl", "-D", str(self.data), "stop", "-m", "fast", "-w")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def restart(self) -> None:
        """Start again after `halt`, on the same port: clients reconnect to the same URL."""
        done = self._launch()
        if done.returncode != 0:
            self._launch_failed(done)

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "stop", "-m", "immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"


def _admin_execute(server_url: str, *statements: str) -> None:
    """Run statements that cannot run in a transaction (CREATE/DROP DATABASE) against the `postgres` db."""
    import psycopg

    dsn = server_url.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def pg_bindir_or_skip() -> Path:
    """Where initdb and pg_ctl are, once psycopg is known to be there too; else skip (fail in CI)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        skip_or_fail("psycopg is not installed: pip install 'psycopg[binary]' to run the PostgreSQL tests")
    bindir = find_pg_bindir()
    if bindir is None:
        skip_or_fail("PostgreSQL binaries not found (initdb): install postgresql to run these tests")
    return bindir


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A running PostgreSQL server for this session; yields an SQLAlchemy URL of an empty database."""
    server = PostgresServer(pg_bindir_or_skip())
    try:
        server.initdb()
        server.start()
        url = server.url(PG_DATABASE)
        _admin_execute(url, f"CREATE DATABASE {PG_DATABASE}")
        yield url
    finally:
        server.stop()


CITUS_OPTIONS = (" -c shared_preload_libraries=citus,pg_stat_statements -c citus.stat_statements_track=all"
                 " -c max_connections=300 -c citus.max_client_connections=250")


class CitusCluster:
    """A coordinator and two worker nodes on loopback, each its own initdb'd server with Citus
    preloaded. A database is made on every node with the extension, and the coordinator told of
    the workers (`citus_add_node`), so distributed tables get shards on both."""

    def __init__(self, bindir: Path) -> None:
        self.nodes = [PostgresServer(bindir, CITUS_OPTIONS) for _ in range(3)]
        self.coordinator, *self.workers = self.nodes

    def start(self) -> None:
        for node in self.nodes:
            node.initdb()
            node.start()

    def create_database(self, name: str) -> str:
        """A new database on every node, the workers added to it on the coordinator; its URL."""
        import psycopg

        for node in self.nodes:
            _admin_execute(node.url(name), f"CREATE DATABASE {name}")
            with psycopg.connect(libpq(node.url(name)), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION citus")
        with psycopg.connect(libpq(self.coordinator.url(name)), autocommit=True) as conn:
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (self.coordinator.port,))
            for worker in self.workers:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (worker.port,))
        return self.coordinator.url(name)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def libpq(url: str) -> str:
    """An SQLAlchemy URL as psycopg's own connection string."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def citus_or_fail(bindir: Path) -> None:
    """Citus must be installed in the PostgreSQL that runs the tests. CI builds it first
    (`.ci/run` calls ../shared/citus/build.sh): there its absence fails loudly; a local run skips."""
    if not (bindir.parent / "lib" / "citus.so").is_file():
        skip_or_fail(f"Citus is not installed in {bindir.parent} (no citus.so): run ../shared/citus/build.sh "
                     "(as root) to build it into this PostgreSQL")


@pytest.fixture(scope="session")
def citus_cluster() -> Iterator[CitusCluster]:
    """A running Citus cluster for this session, started only when a test asks for it."""
    bindir = pg_bindir_or_skip()
    citus_or_fail(bindir)
    cluster = CitusCluster(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def citus_url(citus_cluster: CitusCluster) -> str:
    """The coordinator's URL of an empty database on a coordinator and two workers."""
    return citus_cluster.create_database(PG_DATABASE)


@pytest.fixture
def citus_fresh_db_url(citus_cluster: CitusCluster) -> Iterator[str]:
    """A new database of one test's own on the Citus cluster (each node has it, the workers added)."""
    name = f"citus_{os.getpid()}_{next(_fresh_db_numbers)}"
    yield citus_cluster.create_database(name)
    for node in citus_cluster.nodes:
        with contextlib.suppress(Exception):
            _admin_execute(node.url(name), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def postgres_fresh_db_url(postgres_url: str) -> Iterator[str]:
    """A new, empty database for one test (dropped afterwards, with FORCE in case a pool still holds it)."""
    name = f"test_{os.getpid()}_{next(_fresh_db_numbers)}"
    _admin_execute(postgres_url, f"CREATE DATABASE {name}")
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with contextlib.suppress(Exception):  # cleanup only: the whole server is discarded at session end
        _admin_execute(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["postgresql", pytest.param("citus", marks=pytest.mark.citus)])
def shared_db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database that several workers share: on PostgreSQL, and again on a Citus cluster."""
    return str(request.getfixturevalue("postgres_fresh_db_url" if request.param == "postgresql"
                                       else "citus_fresh_db_url"))
