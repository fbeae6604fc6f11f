"""A store read that fails partway through a request: 503 and a JSON error, never a 500.

Each case makes one kind of read fail (the store raises `StoreUnavailable`,
as it does when Cassandra cannot answer) where a request makes several at
once, and checks that the client is told to try again and that nothing of
the hit was stored.
"""

import pytest
import pytest_twisted

from hiitrack.counting import NAMES
from hiitrack.store.interface import StoreUnavailable
from hiitrack.store.kinds import EVENT, INSERT, VISITOR
from tests.helpers import PASSWORD, batch, get_json, new_user, path, stored, track


def _failing_reads(store, kind) -> None:
    """From now on `store` fails every point read of `kind`."""
    get = store.get

    async def failing(scope, read_kind, key):
        if read_kind.name == kind.name:
            raise StoreUnavailable(f"a read of {kind.name} fails")
        return await get(scope, read_kind, key)

    store.get = failing


@pytest.mark.parametrize(
    "kind, params",
    [
        (EVENT, {"visitor_id": "v1"}),  # the catalog asks whether the new name exists
        (VISITOR, {"visitor_id": "new"}),  # a visitor not in the cache
        (VISITOR, {"visitor_id": "new", "insert_id": "i-2"}),  # while its insert_id is read
        (INSERT, {"visitor_id": "v1", "insert_id": "i-1"}),  # whether the insert_id was applied
    ],
    ids=["name", "visitor", "visitor-with-insert_id", "insert_id"],
)
@pytest_twisted.ensureDeferred
async def test_a_hit_whose_read_fails_is_503_and_stores_nothing(server, user_name, kind, params):
    client = server.client
    await new_user(client, user_name)
    await track(client, user_name, "b", "v1", "seen")
    before = await stored(server, f"{user_name}/b")
    _failing_reads(server.app.store, kind)
    answer = await client.post(path(user_name, "b", "event", "unseen" if kind == EVENT else "seen"), params)
    assert answer.status == 503, answer.body
    assert answer.json == {"error": "storage unavailable, try again"}
    del server.app.store.get
    assert await stored(server, f"{user_name}/b") == before
    assert (await get_json(server, user_name, "event", "seen"))["total"] == 1


@pytest_twisted.ensureDeferred
async def test_a_funnel_visitors_page_whose_read_fails_is_503(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await track(client, user_name, "b", "v1", "a", "b")
    params = [("event", "a"), ("event", "b")]
    assert (await client.post(f"/{user_name}/b/funnel/f", params, auth=(user_name, PASSWORD))).status == 201
    await server.app.backfills.finished(f"{user_name}/b", "f")
    store = server.app.store

    async def failing_page(*args, **kwargs):
        raise StoreUnavailable("a page of a funnel level fails")

    store.page = failing_page
    where = f"/{user_name}/b/funnel/f/visitors"
    answer = await client.get(where, {"step": 1, "status": "reached"}, auth=(user_name, PASSWORD))
    assert answer.status == 503, answer.body
    assert answer.json == {"error": "storage unavailable, try again"}


@pytest.mark.parametrize("report", ["overview", "event", "event-by-property", "property"])
@pytest_twisted.ensureDeferred
async def test_a_report_whose_names_row_fails_beside_its_other_reads_is_503(server, user_name, report):
    """A report reads the bucket's names row at the same time as its name records and counters:
    that one read failing fails the report with 503, as it would alone."""
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v1", ["seen"], [["plan", "pro"]])
    (plan,) = (await get_json(server, user_name))["properties"]
    where, params = {
        "overview": ((), None),
        "event": (("event", "seen"), None),
        "event-by-property": (("event", "seen"), {"property": "plan"}),
        "property": (("property", "plan"), None),
    }[report]
    store = server.app.store
    read_rows = store.read_rows

    async def failing(scope, rows, *args, **kwargs):
        if NAMES in rows:
            raise StoreUnavailable("the names row fails")
        return await read_rows(scope, rows, *args, **kwargs)

    store.read_rows = failing
    answer = await client.get(path(user_name, "b", *where), params, auth=(user_name, PASSWORD))
    assert answer.status == 503, answer.body
    assert answer.json == {"error": "storage unavailable, try again"}
    del store.read_rows
    # And the same read answers once the row reads again.
    answered = await get_json(server, user_name, *where, params=params)
    assert answered["name"] == "plan" if report == "property" else answered["properties"] == {plan: "plan"}
