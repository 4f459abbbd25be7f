"""The committed JSON Schema of input-topic messages matches the pydantic models."""

import json

from streams.producer import INPUT_SCHEMA_PATH, input_json_schema


def test_the_committed_input_schema_is_current():
    committed = json.loads(INPUT_SCHEMA_PATH.read_text())
    assert committed == input_json_schema(), (
        "schemas/input.schema.json is stale: regenerate it with `python -m streams.producer`"
    )


def test_the_schema_offers_one_input_or_an_envelope():
    schema = input_json_schema()
    assert schema["oneOf"] == [{"$ref": "#/$defs/Input"}, {"$ref": "#/$defs/Envelope"}]
    assert "identify" in schema["$defs"]["Input"]["discriminator"]["mapping"]
