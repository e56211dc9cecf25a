"""schemathesis against the running server's own OpenAPI schema: whatever the schema allows (and
requests it forbids), the server answers without a 5xx, in a bounded number of generated requests.

Strategies come from schemathesis's Python API and run under hypothesis directly (its lazy pytest
fixture loader does not work with this pytest version)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda m: m.value)
def test_no_server_errors(server, mode: GenerationMode) -> None:
    auth = {"Authorization": f"Bearer {server.key}"}
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json", headers=auth, timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "GET /v1/models",
        "POST /v1/completions",
        "POST /v1/chat/completions",
        "POST /v1/embeddings",
    }
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not (len(operation.body) or len(operation.path_parameters)):
            continue  # nothing to get wrong in a request without a body or path parameter

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES[mode],
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def no_5xx(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server.url, headers=auth, checks=[not_a_server_error], timeout=60)

        no_5xx()
