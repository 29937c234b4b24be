"""`journey schema`: the JSON Schema of journey files, for editors (yaml-language-server).

The same document is committed as `schema/journey.schema.json` (a test keeps the two equal), and
every shipped journey points at it with `# yaml-language-server: $schema=../schema/journey.schema.json`.
"""

from __future__ import annotations

import json
from typing import Any

from engine.model import Journey

SCHEMA_ID = "https://journey-engine.dev/schema/journey.schema.json"
"""The schema's `$id`: a name for it, stable across releases of the file format."""
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def journey_schema() -> dict[str, Any]:
    """The JSON Schema of a journey file, built from the pydantic models (their field descriptions)."""
    document = Journey.model_json_schema()
    return {"$schema": DIALECT, "$id": SCHEMA_ID, **document}


def schema_text() -> str:
    """The schema as `journey schema` prints it and `schema/journey.schema.json` holds it."""
    return json.dumps(journey_schema(), indent=2) + "\n"
