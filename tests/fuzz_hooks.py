"""Schemathesis hooks for tests/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

Points most generated requests at a real user and bucket, so fuzzing reaches
the handlers instead of stopping at 401/404, and adds the check that every
error is JSON with an `error` key and no traceback.
"""

import json
import os

import schemathesis


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if path_parameters and "user" in path_parameters:
        path_parameters["user"] = os.environ["HIITRACK_FUZZ_USER"]
        if "bucket" in path_parameters:
            path_parameters["bucket"] = "fuzz"
    return path_parameters


@schemathesis.check
def errors_are_json(ctx, response, case):
    assert b"Traceback" not in response.content, "a traceback reached the client"
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if response.status_code >= 400 and content_type.startswith("application/json"):
        body = json.loads(response.content)
        assert isinstance(body, dict) and isinstance(body.get("error"), str), f"error without 'error': {body!r}"
    elif response.status_code >= 400:
        assert content_type.startswith(("application/javascript", "image/gif")), (
            f"{response.status_code} answered as {content_type!r}"
        )
