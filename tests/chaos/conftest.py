"""The chaos suite reuses the server fixtures: in-process servers (`local`, `start_local`) and real
`journey serve` processes (`start_server`)."""

from tests.server.conftest import journeys_dir, local, start_local, start_server  # noqa: F401
