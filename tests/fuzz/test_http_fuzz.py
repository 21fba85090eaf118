"""Schemathesis against the running gateway, from the OpenAPI document it publishes.

Positive and negative cases (bodies, queries and paths that break the
schema) for every operation, each called with a real person's token (who may
call what is tests/test_authorization.py's business). Checked on every
answer: no 5xx, the status and content type are documented, the body and the
headers match the document; and afterwards, every service is still up with
no traceback in its log.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from chorus.webgate.app import OPENAPI_PATH
from fuzzing import EXAMPLES, FULL_RUN, Figures, Fuzzer, assert_stack_alive, fuzz_settings, tracebacks

schema = schemathesis.openapi.from_dict(json.loads(OPENAPI_PATH.read_text()))
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
# The budget is shared by the operations that take input; the others (GET /api/me, ...)
# have a handful of distinct cases, which hypothesis runs and then stops.
WITH_INPUT = sum(1 for result in schema.get_all_operations()
                 if (op := result.ok()).body or op.path_parameters or op.query)
# These check a password with argon2 (~0.3 s a case here), so the short CI run gives them a
# few cases each; the full run gives every operation its equal share.
PASSWORD_PATHS = ["/api/register", "/api/login", "/api/logout"]
PER_OPERATION = EXAMPLES // WITH_INPUT + 1
PER_PASSWORD_OPERATION = PER_OPERATION if FULL_RUN else 5
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
TIMEOUT_SECS = 10


@pytest.fixture(scope="module")
def target(fuzz_stack):
    before = tracebacks(fuzz_stack)
    target = Fuzzer(fuzz_stack, "fuzzer")
    target.figures = Figures("HTTP API (schemathesis)")
    yield target
    assert_stack_alive(fuzz_stack, target.figures, before)
    target.figures.record()


@schema.exclude(path=PASSWORD_PATHS).parametrize()
@fuzz_settings(PER_OPERATION)
def test_http_api(case, target):
    call_and_check(case, target)


@schema.include(path=PASSWORD_PATHS).parametrize()
@fuzz_settings(PER_PASSWORD_OPERATION)
def test_http_api_password_routes(case, target):
    call_and_check(case, target)


def call_and_check(case, target) -> None:
    if case.path_parameters and "group_id" in case.path_parameters and len(case.path_parameters["group_id"]) % 2:
        # Half the group routes get a real group of the caller's, so member-only paths are reached.
        case.path_parameters["group_id"] = target.group_id
    # Logging out revokes the token: that one case gets a token of its own.
    token = target.login() if case.path == "/api/logout" else target.token
    response = case.call(base_url=target.base_url, session=target.http, headers=target.auth(token),
                         timeout=TIMEOUT_SECS)
    target.figures.cases += 1
    target.figures.server_errors += response.status_code >= 500
    case.validate_response(response, checks=CHECKS)
