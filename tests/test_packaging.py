"""The package as users install it: the core (validate, graph, schema, simulate) needs none of the
extras, a command that needs one names it, and `.[dev]` still brings every extra.

`test_a_fresh_venv_without_extras_runs_the_readme_commands` is the real thing: `pip install .`
with no extras into a new virtual environment (about a minute, from PyPI or pip's cache), then
the README's `journey` commands and `journey serve`. The others block the optional modules in a
subprocess of this environment, which takes a second.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from engine.cli import EXTRAS

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "engine", "channels")
EXTRAS_MODULE = {"twilio": "twilio", "fcm": "cryptography", "plot": "matplotlib"}  # a module only that extra brings


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the worktree on the path, so only what is installed is imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def readme_commands() -> list[str]:
    """The `journey ...` commands of the README's first line."""
    block = re.search(r"```sh\n(.*?)\n", (ROOT / "README.md").read_text(encoding="utf-8"))
    assert block is not None, "the README starts with a sh block"
    commands = [part.strip() for part in block[1].split("&&") if part.strip().startswith("journey ")]
    assert [c.split()[1] for c in commands] == ["validate", "simulate"], commands
    return commands


def test_dev_brings_every_extra_and_the_core_none_of_the_server() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    dev = set(extras["dev"])
    for name, requirements in extras.items():
        assert set(requirements) <= dev, f"[dev] misses some of [{name}]"
    core = {Requirement(r).name.lower() for r in PYPROJECT["project"]["dependencies"]}
    optional = {Requirement(r).name.lower() for name in ("server", "postgres", "twilio", "fcm") for r in extras[name]}
    assert core & optional == set()
    assert PYPROJECT["project"]["license"] == "Apache-2.0" and (ROOT / "LICENSE").is_file()
    assert (ROOT / "engine" / "py.typed").is_file() and (ROOT / "channels" / "py.typed").is_file()


def run_blocked(blocked: list[str], *argvs: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None,
                ) -> subprocess.CompletedProcess[str]:
    """`journey ARGV` for each of `argvs`, one after the other in a subprocess where importing any of
    `blocked` fails as if it were not installed; the first to fail ends it with its exit code."""
    code = (f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\nfrom engine.cli import main\n"
            f"for argv in {[list(a) for a in argvs]!r}:\n    try:\n        main(argv)\n"
            f"    except SystemExit as exc:\n        if exc.code:\n            raise\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**(env or os.environ), "PYTHONPATH": str(ROOT)})


def test_the_core_commands_import_no_extra() -> None:
    done = run_blocked(sorted(EXTRAS), ["validate", "journeys"], ["graph", "journeys/cart-abandonment.yaml"],
                       ["schema"], ["simulate", "journeys/cart-abandonment.yaml", "--events",
                                    "examples/cart-abandonment/events.jsonl", "--json"],
                       ["forecast", "journeys/cart-abandonment.yaml", "--profiles",
                        "examples/cart-abandonment/profiles.jsonl", "--events",
                        "examples/cart-abandonment/events.jsonl", "--runs", "3", "--workers", "1", "--json"],
                       ["--version"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f"\njourney-engine {PYPROJECT['project']['version']}\n"), done.stdout[-200:]
    assert '"$schema"' in done.stdout and "flowchart" in done.stdout


def test_a_command_that_needs_an_extra_names_it(tmp_path: Path) -> None:
    (tmp_path / "journeys").mkdir()
    folder = ["--journeys", str(tmp_path / "journeys")]
    done = run_blocked(sorted(EXTRAS), ["serve", *folder], cwd=tmp_path)
    assert (done.returncode, done.stderr) == (1, "journey serve needs the server extra: "
                                                 "pip install 'journey-engine[server]'\n")
    done = run_blocked(["psycopg"], ["serve", *folder, "--db", "postgresql+psycopg://nobody@127.0.0.1:9/none"],
                       cwd=tmp_path)
    assert (done.returncode, done.stderr) == (1, "journey serve needs the postgres extra: "
                                                 "pip install 'journey-engine[postgres]'\n")
    env = {**os.environ, "TOKEN": "t", "ACCOUNT": '{"project_id": "p", "client_email": "a@b.c", "private_key": "k"}'}
    for extra, entry in (("twilio", "{type: twilio, account_sid: AC1, auth_token: '${TOKEN}', from: '+15005550006'}"),
                         ("fcm", "{type: fcm, service_account_json: '${ACCOUNT}'}")):
        (tmp_path / "providers.yaml").write_text(f"providers:\n  - {entry}\n", encoding="utf-8")
        done = run_blocked([EXTRAS_MODULE[extra]], ["serve", *folder, "--providers", str(tmp_path / "providers.yaml"),
                                                    "--db", f"sqlite:///{tmp_path / 'j.db'}"], cwd=tmp_path, env=env)
        assert (done.returncode, done.stderr) == (1, f"journey serve needs the {extra} extra: "
                                                     f"pip install 'journey-engine[{extra}]'\n")
    assert not (tmp_path / "j.db").exists(), "it opened the database before the providers were known to load"
    done = run_blocked(["matplotlib"], ["forecast", "journeys/cart-abandonment.yaml", "--profiles",
                                        "examples/cart-abandonment/profiles.jsonl", "--events",
                                        "examples/cart-abandonment/events.jsonl", "--plot", str(tmp_path / "r.png")])
    assert (done.returncode, done.stderr) == (1, "journey forecast journeys/cart-abandonment.yaml needs the plot "
                                                 "extra: pip install 'journey-engine[plot]'\n")


@pytest.mark.packaging
def test_a_fresh_venv_without_extras_runs_the_readme_commands(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy: an in-tree build would leave build/ and *.egg-info behind
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=clean_env())
    env = clean_env(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(source)], capture_output=True,
                             text=True, timeout=900, env=env)
    assert install.returncode == 0, install.stdout + install.stderr

    version = subprocess.run(["journey", "--version"], capture_output=True, text=True, env=env, timeout=60)
    assert version.stdout == f"journey-engine {PYPROJECT['project']['version']}\n", version.stderr
    for command in readme_commands():
        done = subprocess.run(shlex.split(command), cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert done.stdout.strip(), command
    serve = subprocess.run(["journey", "serve"], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=60)
    assert (serve.returncode, serve.stderr) == (1, "journey serve needs the server extra: "
                                                   "pip install 'journey-engine[server]'\n")
    installed = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=freeze"], capture_output=True,
                               text=True, env=env, timeout=60).stdout.lower()
    assert not {"fastapi", "sqlmodel", "uvicorn", "twilio", "cryptography", "psycopg"} & \
        {line.split("==")[0] for line in installed.splitlines()}
