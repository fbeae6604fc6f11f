"""The access log of a real `twistd -n hiitrack` holds no personal data.

Query strings carry visitor ids (often e-mail addresses once identified),
messages with property values and, from careless clients, passwords: the
access line names the method, the path and the status, never the query,
the referrer, the client's address or its user agent.
"""

import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from hiitrack.web.site import ACCESS_LOG_FLUSH_SECONDS, make_site
from tests.helpers import b64json, path
from tests.processes import TwistdServer

SECRETS = ["hunter2-password", "jane.doe@example.com", "Jane Doe's secret plan", "https://shop.example/?email="]


@pytest.fixture
def twistd(tmp_path: Path):
    server = TwistdServer(f"sqlite:{tmp_path}/hiitrack.db", tmp_path)
    try:
        yield server.start()
    finally:
        server.stop()


def _call(url: str, method: str = "GET", headers: dict | None = None) -> int:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def _access_lines(log: Path, marker: str, count: int, timeout: float = 30) -> list[str]:
    """The access lines naming `marker`, once `count` of them are written."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in log.read_text(errors="replace").splitlines() if marker in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_the_access_log_keeps_queries_and_client_details_out(twistd, tmp_path):
    user = "logtest"
    password, visitor, plan, referrer = SECRETS
    message = b64json([["Signed up"], [["plan", plan]]])
    statuses = [
        _call(f"{twistd.url}/{user}?password={password}", "POST"),
        _call(f"{twistd.url}{path(user, 'site', 'batch')}?visitor_id={visitor}&message={message}"),
        _call(
            f"{twistd.url}{path(user, 'site', 'event', 'Paid')}?visitor_id={visitor}",
            "POST",
            headers={"Referer": referrer, "User-Agent": "Jane's laptop"},
        ),
    ]
    assert all(status < 500 for status in statuses), statuses
    lines = _access_lines(twistd.workdir / f"twistd-{twistd.port}.log", f"/{user}", 3)
    assert len(lines) == 3, lines
    assert any(f'"POST /{user} HTTP/1.1" {statuses[0]} ' in line for line in lines), lines
    assert any(f'"GET /{user}/site/batch HTTP/1.1" {statuses[1]} ' in line for line in lines), lines
    assert any(f'"POST /{user}/site/event/Paid HTTP/1.1" {statuses[2]} ' in line for line in lines), lines
    log = (twistd.workdir / f"twistd-{twistd.port}.log").read_text(errors="replace")
    for secret in [*SECRETS, "jane.doe", "hunter2", message[:20], "Jane's laptop"]:
        assert secret not in log, secret
    assert not [line for line in lines if "127.0.0.1" in line], lines


@pytest.mark.parametrize("destination", ["file", "off"])
def test_the_access_log_can_go_to_a_file_of_its_own_or_nowhere(tmp_path, destination):
    """`--access-log PATH` writes the same lines to PATH (buffered, flushed every second and at
    stop), none to twistd's log; `--access-log off` writes them nowhere."""
    own = tmp_path / "access.log"
    server = TwistdServer(
        f"sqlite:{tmp_path}/hiitrack.db", tmp_path, ["--access-log", str(own) if destination == "file" else "off"]
    ).start()
    try:
        # Users that do not exist: answered 404, and logged like any request.
        statuses = [_call(f"{server.url}/{user}/site/event/e?visitor_id=v", "POST") for user in ("one", "two")]
        assert statuses == [404, 404]
        if destination == "file":
            # Flushed within a second while the server runs.
            lines = _access_lines(own, "/site/event/e", 2)
            expected = [f"POST /{user}/site/event/e HTTP/1.1" for user in ("one", "two")]
            assert [line.split('"')[3] for line in lines] == expected
            assert all(line.split('"')[4].startswith(" 404 ") for line in lines), lines
    finally:
        server.stop()
    twistd_log = (tmp_path / f"twistd-{server.port}.log").read_text(errors="replace")
    # Started and stopped cleanly, and no access line reached twistd's log.
    assert "Site starting on" in twistd_log and "Main loop terminated" in twistd_log, twistd_log[-2000:]
    assert "/site/event/e" not in twistd_log
    assert own.exists() == (destination == "file")


def answered(method: bytes, uri: bytes, code: int, length: int) -> SimpleNamespace:
    """What an access line reads of an answered request."""
    return SimpleNamespace(method=method, uri=uri, clientproto=b"HTTP/1.1", code=code, sentLength=length)


def test_a_seconds_lines_are_one_event_in_twistds_log(server):
    """An event per request cost a formatted timestamp and a flushed write each."""
    site = make_site(server.app)
    clock = site.reactor = Clock()
    site.startFactory()
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        for path in ("/a", "/b", "/c"):
            site.log(
                SimpleNamespace(
                    uri=path.encode() + b"?visitor_id=x",
                    method=b"POST",
                    clientproto=b"HTTP/1.1",
                    code=200,
                    sentLength=2,
                )
            )
        assert [event for event in events if event.get("log_namespace") == "hiitrack.access"] == []
        clock.advance(ACCESS_LOG_FLUSH_SECONDS)
        site.log(answered(b"GET", b"/d", 404, 0))
        site.stopFactory()
    finally:
        globalLogPublisher.removeObserver(events.append)
    logged = [formatEvent(event) for event in events if event.get("log_namespace") == "hiitrack.access"]
    assert len(logged) == 2, logged
    assert [line.split('"')[3] for line in logged[0].split("\n")] == [
        f"POST {path} HTTP/1.1" for path in ("/a", "/b", "/c")
    ]
    assert logged[1].split('"')[3:5] == ["GET /d HTTP/1.1", " 404 - "]
