"""Cross-site request forgery in a real browser (issue 10, item 1).

Chromium logs in to HiiTrack with the analyst's Basic credentials, as a
browser that keeps them does, then opens pages of another origin (another
loopback port) that submit forms to HiiTrack on their own: a password
change, a new bucket, a saved funnel.  The browser attaches the login to
each; the server must refuse them all and change nothing.
tests/browser/forge.js drives the browser; it needs `tests/browser/setup.sh`.
"""

from html import escape

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from tests.chromium import Page, run_driver
from tests.helpers import PASSWORD, auth_of, batch, eid, new_user, path, stored

FORM = """<!doctype html>
<html><body onload="document.forms[0].submit()">
<form method="POST" action="{action}">{fields}</form>
</body></html>
"""


class AttackerSite(Resource):
    """The other origin's pages; anything else (the browser asks for /favicon.ico) is a plain 404."""

    def getChild(self, path: bytes, request: Request) -> IResource:
        return notFound()


def attack_page(action: str, fields: list[tuple[str, str]]) -> bytes:
    """A page that posts a form to `action` as soon as it loads."""
    inputs = "".join(f'<input name="{escape(name)}" value="{escape(value)}">' for name, value in fields)
    return FORM.format(action=escape(action), fields=inputs).encode("utf-8")


async def forge(login: str, user: str, attacks: list[str]) -> dict:
    options = {"login": login, "user": user, "password": PASSWORD, "attacks": attacks}
    return await run_driver("forge.js", options)


@pytest_twisted.ensureDeferred
async def test_forms_from_another_site_change_nothing(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v1", ["A", "B"])
    before = await stored(server, f"{user_name}/b")
    victim = server.url + path(user_name)
    pages = {
        b"password.html": attack_page(victim, [("password", "attacker-chose-this")]),
        b"bucket.html": attack_page(victim + "/stolen", [("description", "attacker")]),
        b"funnel.html": attack_page(
            victim + "/b/funnel/evil", [("description", "x"), ("event_id", eid("A")), ("event_id", eid("B"))]
        ),
    }
    root = AttackerSite()
    for name, html in pages.items():
        root.putChild(name, Page(html, None))
    attacker = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(root))
    try:
        origin = f"http://127.0.0.1:{attacker.getHost().port}"
        report = await forge(victim, user_name, [f"{origin}/{name.decode()}" for name in pages])
    finally:
        await attacker.stopListening()

    assert report["login"] == 200
    targets = [victim, victim + "/stolen", victim + "/b/funnel/evil"]
    # Each form went to the server with the login and the attacker's Origin, and was refused.
    assert report["attacks"] == [
        {"url": target, "origin": origin, "authorized": True, "status": 403} for target in targets
    ]
    # The password, the buckets and the funnels are what they were.
    assert (await client.get(path(user_name), auth=(user_name, "attacker-chose-this"))).status == 401
    answer = await client.get(path(user_name), auth=auth_of(user_name))
    assert answer.json["buckets"] == {"b": {"description": ""}}
    assert (await client.get(path(user_name, "b"), auth=auth_of(user_name))).json["funnels"] == {}
    assert await stored(server, f"{user_name}/b") == before
