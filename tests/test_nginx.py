"""nginx.conf.example's routing, run by a real nginx in front of two real `twistd` processes.

The routing part of the example (its map, upstream and locations, between
the ``--- routing`` and ``--- locations`` markers) is put in a small config
that listens on loopback, with the two processes' ports in the upstream.
Hits carry visitor_id in the query string, as the tracker sends them.  One
process is killed in the middle: its visitors' hits must fail (502) rather
than go to the other process, which would leave the first one's cached state
stale once they come back (issue 10, item 8); reads still answer.  The
process comes back, the refused hits are sent again, as the tracker does,
and every report equals the brute-force model, through nginx and from each
process.  Both processes use one Cassandra keyspace.

And the example as a whole, certificate paths substituted with a
self-signed certificate made here, passes `nginx -t` (syntax, directives,
modules, the certificate and its key).
"""

import base64
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid

from tests.conftest import CASSANDRA_URI
from tests.model import Model
from tests.nginx import UPSTREAM, Nginx, example_with_certificate, nginx_command, self_signed_certificate
from tests.processes import TwistdServer, settled

VISITORS = [f"visitor {i} ✓" for i in range(12)]
EVENTS = ["Landed", "Signed up", "Paid"]


def _call(url: str, data: dict | None = None, auth: str | None = None) -> tuple[int, str | None, dict]:
    """Status, the upstream that answered, and the JSON answer."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode() if data else None)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers.get(UPSTREAM), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, error.headers.get(UPSTREAM), json.loads(body) if body.startswith(b"{") else {}


def _hit(base: str, user: str, visitor: str, events: list[str]) -> tuple[int, str | None]:
    """A batch as hiitrack.js sends it: visitor_id in the query, the message in the body."""
    query = "visitor_id=" + urllib.parse.quote(visitor, safe="")
    message = base64.b64encode(json.dumps([events, []]).encode()).decode()
    status, upstream, _ = _call(f"{base}/{user}/site/batch?{query}", {"message": message})
    return status, upstream


def test_a_process_that_dies_keeps_its_visitors_and_counts_stay_exact(tmp_path):
    servers = [TwistdServer(CASSANDRA_URI, tmp_path) for _ in range(2)]
    nginx = None
    user = f"n{uuid.uuid4().hex[:12]}"
    try:
        for server in servers:
            server.start()
        nginx = Nginx(tmp_path, [server.port for server in servers])
        assert _call(f"{nginx.url}/{user}", {"password": "pw-secret"})[0] == 201
        model = Model()
        home: dict[str, str] = {}

        def sent(visitor: str, events: list[str]) -> None:
            for name in events:
                model.event(visitor, name, 0)

        for round_ in range(2):
            for v, visitor in enumerate(VISITORS):
                events = [EVENTS[(v + round_) % 3], EVENTS[(v + 2 * round_) % 3]]
                status, upstream = _hit(nginx.url, user, visitor, events)
                assert status == 200
                assert home.setdefault(visitor, upstream) == upstream, "a visitor moved between processes"
                sent(visitor, events)
        addresses = [f"127.0.0.1:{server.port}" for server in servers]
        assert set(home.values()) == set(addresses), home

        # The first process dies: its visitors are refused, never sent to the other one.
        servers[0].kill()
        refused = []
        for v, visitor in enumerate(VISITORS):
            events = [EVENTS[v % 3]]
            status, upstream = _hit(nginx.url, user, visitor, events)
            if home[visitor] == addresses[0]:
                assert status == 502, (visitor, status, upstream)
                refused.append((visitor, events))
            else:
                assert (status, upstream) == (200, addresses[1])
                sent(visitor, events)
        assert refused
        # Reads go on, from the living process.
        status, upstream, _ = _call(f"{nginx.url}/{user}/site", auth=f"{user}:pw-secret")
        assert (status, upstream.split(", ")[-1]) == (200, addresses[1])

        # It comes back on its port; the tracker sends the refused hits again, then more.
        revived = TwistdServer(CASSANDRA_URI, tmp_path, writer=servers[0].writer)
        revived.port, revived.url = servers[0].port, servers[0].url
        servers[0] = revived.start()
        for visitor, events in refused:
            assert _hit(nginx.url, user, visitor, events) == (200, addresses[0])
            sent(visitor, events)
        for v, visitor in enumerate(VISITORS):
            events = [EVENTS[(v + 1) % 3], EVENTS[v % 3]]
            assert _hit(nginx.url, user, visitor, events) == (200, home[visitor])
            sent(visitor, events)

        for base in [nginx.url] + [server.url for server in servers]:
            for name in EVENTS:
                url = f"{base}/{user}/site/event/{urllib.parse.quote(name)}"
                expected = (200, model.event_report(name))
                # Each process sees the other's hits once that one folded them.
                assert settled(lambda url=url: _call(url, auth=f"{user}:pw-secret")[::2], expected) == expected
    finally:
        if nginx is not None:
            nginx.stop()
        for server in servers:
            server.stop()


def test_the_example_passes_nginx_t(tmp_path):
    certificate, key = self_signed_certificate(tmp_path)
    config = tmp_path / "nginx.conf"
    config.write_text(example_with_certificate(certificate, key))
    checked = subprocess.run([*nginx_command(tmp_path, config), "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
