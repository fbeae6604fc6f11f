import pytest_twisted

from tests.http import b64json, path


@pytest_twisted.ensureDeferred
async def test_track_and_report(server, user_name):
    client = server.client
    assert (await client.post(path(user_name), {"password": "pw-secret"})).status == 201
    for name in ["A", "B"]:
        answer = await client.post(path(user_name, "site", "event", name), {"visitor_id": "v1"})
        assert answer.status == 200, answer.body
    answer = await client.get(path(user_name, "site", "batch"), {"message": b64json([["A"], [["plan", "pro"]]])})
    assert answer.status == 200
    report = await client.get(path(user_name, "site", "event", "B"), auth=(user_name, "pw-secret"))
    assert report.json["total"] == 1
