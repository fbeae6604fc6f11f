"""Fuzz a running server with schemathesis against its own OpenAPI description.

Bounded (a fixed number of cases per operation, a fixed seed in CI): no 5xx,
no traceback, every error is JSON with `error`.
"""

import os
import subprocess
import sys
import urllib.request
import uuid

from tests.conftest import store_uri_for
from tests.processes import ROOT, TwistdServer

EXAMPLES = os.environ.get("HIITRACK_FUZZ_EXAMPLES", "50")


def test_schemathesis_finds_no_server_error(store_kind, tmp_path):
    server = TwistdServer(store_uri_for(store_kind, tmp_path), tmp_path).start()
    try:
        user = f"f{uuid.uuid4().hex[:12]}"
        urllib.request.urlopen(server.url + f"/{user}", data=b"password=pw", timeout=10).read()
        urllib.request.urlopen(server.url + f"/{user}/fuzz/event/A", data=b"visitor_id=v", timeout=10).read()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error,errors_are_json",
                "--max-examples",
                EXAMPLES,
                "--seed",
                "20261129",
                "--auth",
                f"{user}:pw",
                "--workers",
                "2",
                "--no-shrink",
                "--request-timeout",
                "10",
                "--phases",
                "examples,fuzzing",
                # Deleting the user or changing its password would lock the fuzzer out.
                "--exclude-operation-id",
                "delete_user",
                "--exclude-operation-id",
                "post_user",
            ],
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks",
                "PYTHONPATH": str(ROOT),
                "HIITRACK_FUZZ_USER": user,
            },
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    finally:
        server.stop()
