"""The site keeps the tracking resources it walked to, by path (hiitrack.web.site, ROUTE_CACHE):
a hit's path is walked and checked once, and a kept resource answers exactly as a new one."""

import pytest
import pytest_twisted

from hiitrack.web.tree import Root
from tests.helpers import auth_of, new_user, path


@pytest.fixture
def walks(monkeypatch) -> list[bytes]:
    """The first segment of every walk down the tree from the root."""
    walked: list[bytes] = []
    child = Root.child

    def counted(self, segment, request):
        walked.append(segment)
        return child(self, segment, request)

    monkeypatch.setattr(Root, "child", counted)
    return walked


@pytest_twisted.ensureDeferred
async def test_a_tracking_path_is_walked_once_and_its_answers_are_unchanged(server, user_name, walks):
    client = server.client
    await new_user(client, user_name)
    event = path(user_name, "b", "event", "A")
    walks.clear()
    for visitor in ("v1", "v2", "v1"):
        answer = await client.post(event, {"visitor_id": visitor})
        assert (answer.status, answer.json) == (200, {})
    assert len(walks) == 1
    # The kept resource checks each request's credentials anew, and reports what it counted.
    assert (await client.get(event)).status == 401
    report = await client.get(event, auth=auth_of(user_name))
    assert (report.status, report.json["total"], report.json["unique_total"]) == (200, 3, 2)
    assert (await client.get(event, auth=(user_name, "wrong password"))).status == 401
    assert len(walks) == 1
    # Another event's path is walked, and a property's.
    assert (await client.post(path(user_name, "b", "event", "B"), {"visitor_id": "v1"})).status == 200
    value = {"value": "InByb0ki", "visitor_id": "v1"}
    for _ in range(2):
        assert (await client.post(path(user_name, "b", "property", "plan"), value)).status == 200
    assert len(walks) == 3


@pytest_twisted.ensureDeferred
async def test_refused_and_other_paths_are_walked_every_time(server, user_name, walks):
    client = server.client
    await new_user(client, user_name)
    refused = path(user_name, "b", "event", "x" * 300)
    slash = path(user_name, "b", "event", "A") + "/"
    report_only = path(user_name, "b", "event_id", "AAAAAAAAAAAAAAAAAAAAAA")
    walks.clear()
    for _ in range(2):
        assert (await client.post(refused, {"visitor_id": "v"})).status == 400
        assert (await client.post(slash, {"visitor_id": "v"})).status == 301
        assert (await client.get(report_only, auth=auth_of(user_name))).status == 404
    assert len(walks) == 6


@pytest_twisted.ensureDeferred
async def test_the_kept_paths_are_bounded(server, user_name, walks, monkeypatch):
    client = server.client
    await new_user(client, user_name)
    monkeypatch.setattr(server.port.factory._routes, "size", 2)
    walks.clear()
    for name in ("A", "B", "C", "A"):
        assert (await client.post(path(user_name, "b", "event", name), {"visitor_id": "v"})).status == 200
    # A was forgotten for C (the cache holds two), and walked again.
    assert len(walks) == 4
    assert (await client.post(path(user_name, "b", "event", "C"), {"visitor_id": "v"})).status == 200
    assert len(walks) == 4
