"""The committed JSON Schema of trajectories and event-log lines (traces/schema.json).

Regenerate after changing a model: `python -m deepsearch.traces.schema_file`; a test fails while the
committed file differs from what the models generate.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from .events import Event
from .schema import SCHEMA_VERSION, Trajectory

SCHEMA_PATH = Path(__file__).with_name("schema.json")


def generate() -> dict:
    _, defs = models_json_schema([(Trajectory, "validation")], ref_template="#/$defs/{model}")
    event = TypeAdapter(Event).json_schema(ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "deepsearch trajectory",
        "description": "A run (Trajectory) and the event-log lines it is rebuilt from (Event).",
        "version": SCHEMA_VERSION,
        "$defs": {**defs["$defs"], **event.pop("$defs", {}), "Event": event},
        "$ref": "#/$defs/Trajectory",
    }


def render() -> str:
    return json.dumps(generate(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
