"""The site's settings that `twistd hiitrack`'s options show: how long the
server waits for a client, and where the access log can go.

Kept in a module of their own, which imports nothing, so that the options
(hiitrack.tap) can show and check them without importing the application.  A request
line with its headers is at most ~72 KiB and a body 64 KiB: a slow but
honest client sends them well within these; behind nginx, which buffers
whole requests, they arrive at once.  Tests: tests/test_tap.py,
tests/test_http_deadlines.py.
"""

__all__ = ["ACCESS_LOG_OFF", "ACCESS_LOG_TWISTD", "BODY_TIMEOUT", "HEADER_TIMEOUT", "IDLE_TIMEOUT"]

IDLE_TIMEOUT = 60.0
HEADER_TIMEOUT = 10.0
BODY_TIMEOUT = 30.0

ACCESS_LOG_TWISTD = "twistd"
"""The access log goes to twistd's log (the default)."""
ACCESS_LOG_OFF = "off"
"""No access log (behind nginx, whose log has the same requests)."""
