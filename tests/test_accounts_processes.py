"""Account changes hold across processes (issue 10, item 3).

Two real `twistd` processes share one store: a Cassandra keyspace, and one
SQLite file (two processes may share it: SQLite locks the file).  What
process A changes (a password, an account deleted and its name registered
again) holds in process B at once for everything that needs credentials;
hits into the deleted account stop within the documented staleness
(hiitrack.accounts.BUCKET_SECONDS).
"""

import itertools
import time
import uuid

import pytest

from hiitrack.accounts import BUCKET_SECONDS
from tests.conftest import CASSANDRA_URI
from tests.processes import TwistdServer, call, settled

ADDRESSES = itertools.count()
OLD, NEW, NEXT_OWNER = "first password", "second password", "next owner's password"


def _call(method: str, url: str, data: dict | None = None, auth: str | None = None) -> tuple[int, dict]:
    # Each call from its own client address: the test's wrong logins must be
    # answered 401, not held back by the per-address back-off.
    forwarded = {"X-Forwarded-For": f"10.{next(ADDRESSES) % 250}.0.1"}
    return call(url, data, method=method, auth=auth, headers=forwarded)


def _hit(server: TwistdServer, user: str, visitor: str) -> int:
    return _call("POST", f"{server.url}/{user}/site/event/A", {"visitor_id": visitor})[0]


@pytest.mark.parametrize("store", ["sqlite", "cassandra"])
def test_a_change_in_one_process_holds_in_the_other(tmp_path, store):
    uri = f"sqlite:{tmp_path}/shared.db" if store == "sqlite" else CASSANDRA_URI
    a = TwistdServer(uri, tmp_path).start()
    b = TwistdServer(uri, tmp_path).start()
    user = f"p{uuid.uuid4().hex[:12]}"
    try:
        assert _call("POST", f"{a.url}/{user}", {"password": OLD})[0] == 201
        assert _hit(a, user, "v1") == 200
        key = _call("GET", f"{a.url}/{user}/site", auth=f"{user}:{OLD}")[1]["access_key"]
        # B has seen the password, the key and the bucket: whatever it caches, it has.
        assert _call("GET", f"{b.url}/{user}", auth=f"{user}:{OLD}")[0] == 200
        # The event is B's to report once A folded its hit (its name's use is a counter cell): until
        # then B may answer 404, the bucket's names counted (folded apart from the hit) and A not yet.
        assert settled(lambda: _call("GET", f"{b.url}/{user}/site/event/A", auth=f"{user}:{key}")[0], 200) == 200
        assert _hit(b, user, "v2") == 200

        change = {"password": NEW, "current_password": OLD}
        assert _call("POST", f"{a.url}/{user}", change, auth=f"{user}:{OLD}")[0] == 200
        assert _call("GET", f"{b.url}/{user}", auth=f"{user}:{OLD}")[0] == 401
        assert _call("GET", f"{b.url}/{user}/site/event/A", auth=f"{user}:{key}")[0] == 401
        status, report = _call("GET", f"{b.url}/{user}/site", auth=f"{user}:{NEW}")
        assert status == 200
        new_key = report["access_key"]
        # A's hit is in B's report once A folded it (the process that journals counters folds them every second).
        total = settled(lambda: _call("GET", f"{b.url}/{user}/site/event/A", auth=f"{user}:{new_key}")[1]["total"], 2)
        assert total == 2

        assert _call("DELETE", f"{a.url}/{user}", auth=f"{user}:{NEW}")[0] == 200
        assert _call("GET", f"{b.url}/{user}", auth=f"{user}:{NEW}")[0] == 401
        assert _call("GET", f"{b.url}/{user}/site/event/A", auth=f"{user}:{new_key}")[0] == 401
        # Hits into the deleted account stop within BUCKET_SECONDS.
        deleted = time.monotonic()
        while _hit(b, user, "late") == 200:
            assert time.monotonic() - deleted < BUCKET_SECONDS + 1, "B kept taking hits into a deleted account"
            time.sleep(0.1)
        assert _hit(b, user, "late") == 404

        # The name is registered again; its new owner's data is theirs alone.
        assert _call("POST", f"{a.url}/{user}", {"password": NEXT_OWNER})[0] == 201
        assert _call("POST", f"{a.url}/{user}/site", {"description": "mine"}, auth=f"{user}:{NEXT_OWNER}")[0] == 201
        assert _hit(a, user, "next") == 200
        for password in (OLD, NEW, key, new_key):
            for where in ("", "/site", "/site/event/A"):
                assert _call("GET", f"{b.url}/{user}{where}", auth=f"{user}:{password}")[0] == 401, (password, where)
        status, report = _call("GET", f"{b.url}/{user}/site", auth=f"{user}:{NEXT_OWNER}")
        assert (status, report["description"]) == (200, "mine")
        assert report["access_key"] not in (key, new_key)
    finally:
        a.stop()
        b.stop()
