"""schemathesis against the front's own /openapi.json: generated requests for every operation, as a signed-in
user, reach the real stack (Serve, PostgreSQL); none may get a 500, and every error is in the error format."""

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.auth_helpers import bearer

EXAMPLES_PER_OPERATION = 15


def test_no_server_error_on_generated_input(front_app, issuer):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", front_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14  # every /ai/* route is in the document
    headers = bearer(issuer.firebase_token("fuzzer"))
    seen: dict[str, set[int]] = {}

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            response = case.call(headers=headers)
            seen.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)
            assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error["code"].startswith(("AI_", "AUTH_")) and error["message"]

        check()
    assert len(seen) == len(operations)
