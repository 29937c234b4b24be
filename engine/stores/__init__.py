"""Store implementations: `memory` (simulator, tests) and `sql` (server)."""
