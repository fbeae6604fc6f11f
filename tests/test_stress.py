"""Stress: 50 visitors × 40 actions from 16 concurrent clients, against the model.

Each client owns some visitors and sends their actions one after another, so
every visitor's order is known while 16 requests are in flight at once; the
reports must then equal the brute-force model of tests/model.py exactly.
"""

import random

import pytest_twisted
from twisted.internet import defer

from tests.http import b64json, path
from tests.model import Model

VISITORS = 50
ACTIONS = 40
CLIENTS = 16
EVENTS = ["Landed", "Signed up", "Paid", "Churned / left"]
PROPERTIES = {"plan": ["free", "pro", "team"], "country": ["NO", "DE"]}


def _script(rng: random.Random) -> dict[str, list[tuple]]:
    """Each visitor's actions: ("event", name) | ("property", name, value) | ("batch", events, properties)."""
    script = {}
    for v in range(VISITORS):
        actions = []
        for _ in range(ACTIONS):
            kind = rng.random()
            if kind < 0.6:
                actions.append(("event", rng.choice(EVENTS)))
            elif kind < 0.75:
                name = rng.choice(sorted(PROPERTIES))
                actions.append(("property", name, rng.choice(PROPERTIES[name])))
            else:
                events = rng.sample(EVENTS, rng.randint(1, 3))
                name = rng.choice(sorted(PROPERTIES))
                actions.append(("batch", events, [(name, rng.choice(PROPERTIES[name]))]))
        script[f"visitor {v}"] = actions
    return script


async def _send(client, user: str, visitor: str, action: tuple) -> None:
    if action[0] == "event":
        answer = await client.post(path(user, "site", "event", action[1]), {"visitor_id": visitor})
    elif action[0] == "property":
        answer = await client.post(
            path(user, "site", "property", action[1]), {"visitor_id": visitor, "value": b64json(action[2])}
        )
    else:
        message = b64json([action[1], [list(pair) for pair in action[2]]])
        answer = await client.post(path(user, "site", "batch"), {"visitor_id": visitor, "message": message})
    assert answer.status == 200, answer.body


@pytest_twisted.ensureDeferred
async def test_fifty_visitors_from_sixteen_clients_match_the_model(server, user_name):
    client = server.client
    assert (await client.post(path(user_name), {"password": "pw-secret"})).status == 201
    script = _script(random.Random(20261129))
    model = Model()
    when = int(server.app.clock())
    for visitor, actions in script.items():
        for action in actions:
            if action[0] == "event":
                model.event(visitor, action[1], when)
            elif action[0] == "property":
                model.property(visitor, action[1], action[2])
            else:
                model.batch(visitor, action[1], action[2], when)

    visitors = sorted(script)

    async def run_client(n: int) -> None:
        for visitor in visitors[n::CLIENTS]:
            for action in script[visitor]:
                await _send(client, user_name, visitor, action)

    await defer.gatherResults([defer.ensureDeferred(run_client(n)) for n in range(CLIENTS)], consumeErrors=True)

    auth = (user_name, "pw-secret")
    for event in EVENTS:
        report = await client.get(path(user_name, "site", "event", event), auth=auth)
        assert report.json == model.event_report(event), event
        for prop in PROPERTIES:
            split = await client.get(path(user_name, "site", "event", event), {"property": prop}, auth=auth)
            assert split.json == model.event_report(event, prop), (event, prop)
    for prop in PROPERTIES:
        report = await client.get(path(user_name, "site", "property", prop), auth=auth)
        assert report.json == model.property_report(prop), prop
    steps = ["Landed", "Signed up", "Paid"]
    funnel = await client.get(path(user_name, "site", "funnel"), {"event": steps, "property": "plan"}, auth=auth)
    assert funnel.json == model.funnel_report(steps, "plan")
