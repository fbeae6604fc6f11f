"""Debian's Chromium driven by a node script of tests/browser/ (playwright-core).

The harness of tests/test_tracker_browser.py, tests/test_dashboard_browser.py
and tests/test_csrf_browser.py: the check that the browser is installed, one
run of a driver script with its JSON options and report, the tracker snippet
of the README, and the static page a second origin serves.  Without Chromium or node_modules these tests fail,
they never skip: run `bash tests/browser/setup.sh` once.
"""

import os
import re
import shutil
from pathlib import Path

import pytest
import ujson
from twisted.internet import reactor, utils
from twisted.web.resource import Resource
from twisted.web.server import Request

__all__ = [
    "BROWSER",
    "CHROMIUM",
    "DRIVE_TIMEOUT",
    "ROOT",
    "Page",
    "check_browser_installed",
    "readme_snippet",
    "run_driver",
]

ROOT = Path(__file__).resolve().parent.parent
BROWSER = ROOT / "tests" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DRIVE_TIMEOUT = 100
"""Seconds a driver script may run before it is killed (the scripts give up by themselves after 90)."""


def check_browser_installed() -> str:
    """The path of node, or the test fails naming what is missing."""
    node = shutil.which("node")
    missing = []
    if node is None:
        missing.append("node (Node.js)")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"Chromium at {CHROMIUM}")
    if not (BROWSER / "node_modules" / "playwright-core").is_dir():
        missing.append("tests/browser/node_modules/playwright-core")
    if missing:
        pytest.fail(
            "the browser tests need " + ", ".join(missing) + ": run `bash tests/browser/setup.sh`",
            pytrace=False,
        )
    assert node is not None
    return node


async def run_driver(script: str, options: dict, timeout: float = DRIVE_TIMEOUT) -> dict:
    """Run tests/browser/`script` with `options`, killed after `timeout` seconds; the report it printed."""
    node = check_browser_installed()
    out, err, code = await utils.getProcessOutputAndValue(
        "/usr/bin/timeout",
        ["-k", "5", str(timeout), node, str(BROWSER / script), ujson.dumps(options)],
        env={**os.environ, "CHROMIUM": CHROMIUM},
        path=str(BROWSER),
        reactor=reactor,
    )
    if code != 0:
        pytest.fail(f"{script} exited {code}:\n{err.decode(errors='replace')}", pytrace=False)
    return ujson.loads(out)


def readme_snippet(tracker: str, user: str, bucket: str) -> str:
    """The tracker snippet of the README, pointed at the test server."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```html\n(<script>.*?</script>)\n```", text, re.S).group(1)
    block = block.replace("https://track.example.com", tracker)
    block = block.replace("user: 'acme'", f"user: '{user}'").replace("bucket: 'site'", f"bucket: '{bucket}'")
    assert tracker in block and user in block and "pageviews: true" in block, "the snippet in README.md changed shape"
    return block


class Page(Resource):
    """A fixed HTML page, never cached, with an optional Content-Security-Policy."""

    isLeaf = True

    def __init__(self, html: bytes, csp: bytes | None) -> None:
        super().__init__()
        self.html = html
        self.csp = csp

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        if self.csp:
            request.setHeader(b"Content-Security-Policy", self.csp)
        return self.html
