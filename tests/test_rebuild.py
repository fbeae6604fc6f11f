"""Rebuild: counters recomputed from the histories equal the live ones, on both stores.

A bucket is fed through HTTP (tests/test_history.py's scenario), its reports
read, a counter damaged on purpose, and the bucket rebuilt: every report is
what it was.  The command line runs once on a SQLite file.
"""

import os
import subprocess
import sys

import pytest_twisted

from hiitrack import ids
from hiitrack.counting import NAMES, Visitor, event_row
from hiitrack.history import Hit, hit_key
from hiitrack.ids import encode_id, event_id
from hiitrack.rebuild import rebuild
from hiitrack.store import WriteBatch
from hiitrack.store.kinds import HIT, VISITOR
from tests.helpers import new_user, vid
from tests.test_history import EVENTS, VALUES, _auth, _hit, _reports, _scenario

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest_twisted.ensureDeferred
async def test_rebuilt_counters_equal_live_counters(server, user_name):
    client = server.client
    await new_user(client, user_name)
    hits = _scenario(5)
    half = len(hits) // 2
    for visitor, events, props, when in hits[:half]:
        assert (await _hit(client, user_name, "site", visitor, events, props, when)).status == 200
    scope = f"{user_name}/site"
    # Exact funnels too: one backfilled from the first hits, one counted live only.
    for name, extra in (("f", [("property", "plan")]), ("g", [("order", "any")])):
        params = [("event", "view"), ("event", "sign up"), ("event", "buy"), *extra]
        answer = await client.post(f"/{user_name}/site/funnel/{name}", params, auth=_auth(user_name))
        assert answer.status == 201, answer.body
    for visitor, events, props, when in hits[half:]:
        assert (await _hit(client, user_name, "site", visitor, events, props, when)).status == 200
    await server.app.backfills.finished(scope, "f")

    async def funnels() -> list:
        answers = []
        for name in ("f", "g"):
            answers.append((await client.get(f"/{user_name}/site/funnel/{name}", auth=_auth(user_name))).json)
            for step in (1, 2, 3):
                where = f"/{user_name}/site/funnel/{name}/visitors"
                for status in ("reached", "dropped"):
                    params = {"step": step, "status": status}
                    answers.append((await client.get(where, params, auth=_auth(user_name))).json)
        return answers

    live = await _reports(client, user_name, "site", EVENTS, list(VALUES))
    live_funnels = await funnels()
    assert live_funnels[0]["conversion"]["visitors"][0] > 0
    # A counter a bug got wrong, and a cell no hit ever made.
    await server.app.store.write(
        WriteBatch(scope, increments={event_row(event_id("view")): {b"t": 7}, b"bogus": {b"c": 1}})
    )
    assert await _reports(client, user_name, "site", EVENTS, list(VALUES)) != live
    progress = []
    replayed = await rebuild(server.app.store, scope, lambda visitors, hits: progress.append((visitors, hits)))
    assert replayed == len(hits)
    assert progress[-1] == (5, len(hits))
    assert await _reports(client, user_name, "site", EVENTS, list(VALUES)) == live
    assert await funnels() == live_funnels
    assert await server.app.store.read_rows(scope, [b"bogus"]) == [{}]
    # Hits after a rebuild count on the rebuilt states.
    assert (await _hit(client, user_name, "site", "v1", ["view"])).status == 200
    report = (await client.get(f"/{user_name}/site/event/view", auth=_auth(user_name))).json
    assert report["total"] == live["view", "{}", "{}"][1]["total"] + 1


@pytest_twisted.ensureDeferred
async def test_a_bucket_made_before_names_were_counted_keeps_them_all_until_rebuilt(server, user_name):
    """A bucket without the names row's mark lists every name it has a record of, even one only an
    erased visitor used, as it did before the names' users were counted; a rebuild counts them."""
    client = server.client
    await new_user(client, user_name)
    scope = f"{user_name}/site"
    assert (await _hit(client, user_name, "site", "v1", ["view"], [["plan", "free"]])).status == 200
    assert (await _hit(client, user_name, "site", "v2", ["view", "gone"], [["plan", "gone"]])).status == 200
    # As if the bucket had been made before: its hits counted no names' users, and it is not marked.
    unmarked = {NAMES: {column: -n for column, n in (await server.app.store.read_rows(scope, [NAMES]))[0].items()}}
    await server.app.store.write(WriteBatch(scope, increments=unmarked))
    server.app.catalog.forget(scope)
    assert (await client.delete(f"/{user_name}/site/visitor/v2", auth=_auth(user_name))).status == 200

    async def names() -> tuple:
        overview = (await client.get(f"/{user_name}/site", auth=_auth(user_name))).json
        plan = (await client.get(f"/{user_name}/site/property/plan", auth=_auth(user_name))).json
        gone = await client.get(f"/{user_name}/site/event/gone", auth=_auth(user_name))
        return sorted(overview["events"]), sorted(plan["values"]), gone.status

    assert await names() == (["gone", "view"], sorted([vid("plan", "free"), vid("plan", "gone")]), 200)
    await rebuild(server.app.store, scope)
    assert await names() == (["view"], [vid("plan", "free")], 404)


@pytest_twisted.ensureDeferred
async def test_values_apart_under_older_id_rules_are_one_once_rebuilt(server, user_name, monkeypatch):
    """Before numbers were written by their worth, 2 and 2.0 were two values of a property: a
    rebuild works their ids out again, and names each value under its new id (3.0 had none)."""
    client = server.client
    await new_user(client, user_name)
    scope = f"{user_name}/site"
    with monkeypatch.context() as older:
        older.setattr(ids, "_numbers_by_value", lambda value: value)
        for visitor, value in (("v1", 2), ("v2", 2.0), ("v3", 3.0)):
            assert (await _hit(client, user_name, "site", visitor, ["view"], [["n", value]])).status == 200

    async def values() -> dict:
        report = (await client.get(f"/{user_name}/site/property/n", auth=_auth(user_name))).json
        return {value_id: (entry["value"], entry["total"]) for value_id, entry in report["values"].items()}

    assert len(await values()) == 3
    await rebuild(server.app.store, scope)
    view = encode_id(event_id("view"))
    assert await values() == {vid("n", 2): (2, {view: 2}), vid("n", 3): (3, {view: 1})}


@pytest_twisted.ensureDeferred
async def test_the_rebuild_command(tmp_path, user_name):
    from hiitrack.store.sqlite import SQLiteStore

    path = tmp_path / "x.db"
    store = SQLiteStore(str(path))
    await store.open()
    hit = Hit(1_700_000_000_000, ("a", "a"))
    records = {(HIT.of("v"), hit_key(1)): hit.to_bytes(), (VISITOR, "v"): Visitor(hits=1).to_bytes()}
    await store.write(WriteBatch(f"{user_name}/b", records, {b"bogus": {b"c": 1}}))
    await store.close()
    environment = {**os.environ, "PYTHONPATH": ROOT}
    command = [sys.executable, "-m", "hiitrack.admin", "rebuild", "--store", f"sqlite:{path}", f"{user_name}/b"]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "1 visitors, 1 hits replayed" in done.stderr
    store = SQLiteStore(str(path))
    await store.open()
    rows = await store.read_rows(f"{user_name}/b", [b"bogus", event_row(event_id("a"))])
    a = event_id("a")
    assert rows == [{}, {b"t": 2, b"u": 1, b"p" + a: 1, b"q" + a: 1}]
    await store.close()
    bad = subprocess.run([*command[:-1], "nobucket"], env=environment, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "USER/BUCKET" in bad.stderr
