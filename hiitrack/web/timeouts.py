"""How long the server waits for a client: the defaults of `twistd hiitrack`'s
options and of hiitrack.web.site.

Kept in a module of their own, which imports nothing, so that the options
(hiitrack.tap) can show them without importing the application.  A request
line with its headers is at most ~72 KiB and a body 64 KiB: a slow but
honest client sends them well within these; behind nginx, which buffers
whole requests, they arrive at once.  Tests: tests/test_tap.py,
tests/test_http_deadlines.py.
"""

__all__ = ["BODY_TIMEOUT", "HEADER_TIMEOUT", "IDLE_TIMEOUT"]

IDLE_TIMEOUT = 60.0
HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0
