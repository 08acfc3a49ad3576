"""Hostile input, generated: schemathesis reads the API's own OpenAPI document (built from
the export JSON Schemas) and sends valid values (positive) and invalid ones (negative: wrong
types, patterns, bounds, unknown parameters) for every parameter of every operation. Every
answer must be documented, never a 500, and a 200 must hold to the record schema the
export published; a negative case must be refused with a 4xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from serving_vintages import make_vintage

from assets.serving.files_store import FilesStore
from pipelines.api.app import create_app

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 12}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    exports = tmp_path_factory.mktemp("hostile") / "exports"
    make_vintage(exports, 0)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(FilesStore(exports)))
    # A query string too long to read is refused with 414 (URI Too Long): a rejection too.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "414"]
    return schema


def _operations(schema):
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    return operations


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(api_schema, mode):
    for operation in _operations(api_schema):
        if mode is GenerationMode.NEGATIVE and not operation.definition.raw.get("parameters"):
            continue  # nothing to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES[mode], deadline=None, suppress_health_check=list(HealthCheck)
        )
        def check(case):
            response = case.call()
            assert response.status_code < 500, (case.path, case.query, response.text)
            # Whether negative data is still invalid once serialised (an empty list is no
            # parameter at all) is for schemathesis's own check (negative_data_rejection).
            case.validate_response(response)

        check()
