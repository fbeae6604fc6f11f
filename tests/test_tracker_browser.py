"""The tracker in a real browser: Debian's Chromium, driven by playwright-core.

A page on a second origin (another loopback port, so the tracking requests
are cross-origin and CORS is exercised) loads the snippet of
the README, makes calls, navigates and reloads; tests/browser/drive.js
does the visiting.  The reports must then hold exactly what the page did,
with one visitor across the reload.  Three browsers: a modern one (fetch,
and sendBeacon as a page is left), one without fetch and sendBeacon (JSONP),
and one whose page also forbids scripts from the tracking server (the
pixel).  Needs `tests/browser/setup.sh` to have run: without Chromium or
node_modules these tests fail, they never skip.
"""

import base64
from urllib.parse import parse_qs, urlparse

import pytest
import pytest_twisted
import ujson
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.resource import Resource
from twisted.web.server import Site

from hiitrack.ids import encode_id, property_id, value_id
from tests.chromium import Page, readme_snippet, run_driver
from tests.http import path

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
{snippet}
</head><body><a id="next" href="/page2.html">next</a></body></html>
"""


def snippet(tracker: str, user: str, bucket: str, mode: str) -> str:
    """The snippet of the README, pointed at the test server."""
    block = readme_snippet(tracker, user, bucket)
    if mode == "fetch":
        # Nothing leaves before a flush or the page hiding: the click away
        # from page 1 must go by sendBeacon.
        block = block.replace("pageviews: true", "pageviews: true, batchDelay: 60000")
    return block


async def serve_pages(tracker: str, user: str, bucket: str, mode: str):
    """The second origin: two pages on another loopback port."""
    csp = None
    if mode == "pixel":
        # Scripts only from the page itself and the tracker file: the JSONP
        # answers of /batch are blocked, images are not.
        csp = f"script-src 'unsafe-inline' {tracker}/hiitrack.js".encode()
    root = Resource()
    for number in (1, 2):
        html = PAGE.format(title=f"page {number}", snippet=snippet(tracker, user, bucket, mode))
        root.putChild(f"page{number}.html".encode(), Page(html.encode("utf-8"), csp))
    root.putChild(b"favicon.ico", Page(b"", None))
    endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
    return await endpoint.listen(Site(root))


async def drive(pages: str, tracker: str, bucket: str, mode: str) -> dict:
    options = {"pages": pages, "tracker": tracker, "bucket": tracker + bucket, "mode": mode}
    return await run_driver("drive.js", options)


def batch_messages(requests: list[dict]) -> list[dict]:
    """The batch requests the pages made, with their parameters."""
    found = []
    for request in requests:
        url = urlparse(request["url"])
        if url.path.endswith("/batch"):
            params = parse_qs(url.query) | parse_qs(request.get("body", ""))
            found.append({"type": request["type"], **{k: v[0] for k, v in params.items()}})
    return found


P1, BUY, P2, PAID, LOGIN = "Viewed /page1.html", "Clicked buy", "Viewed /page2.html", "Paid ✓", "Logged in"
NAME = "Zoë 東京 🚀"


@pytest.mark.parametrize("mode", ["fetch", "jsonp", "pixel"])
@pytest_twisted.ensureDeferred
async def test_tracker_in_chromium(server, user_name, mode):
    client = server.client
    auth = (user_name, "pw-secret")
    bucket = "site"
    assert (await client.post(path(user_name), {"password": "pw-secret"})).status == 201
    pages = await serve_pages(server.url, user_name, bucket, mode)
    try:
        visit = await drive(f"http://127.0.0.1:{pages.getHost().port}", server.url, path(user_name, bucket), mode)
    finally:
        await pages.stopListening()

    # Transports: what each browser could use, and did.
    errors = visit["errors"]
    assert not [e for e in errors if e.startswith("pageerror") or "hiitrack: " in e], errors
    if mode == "pixel":
        # The page's CSP really blocked the JSONP answers.
        assert any("Content Security Policy" in e and "/batch?callback=" in e for e in errors), errors
    batches = batch_messages(visit["requests"])
    kinds = {b["type"] for b in batches}
    if mode == "fetch":
        assert visit["transports"] == {"fetch": "function", "sendBeacon": "function"}
        assert kinds == {"fetch"}, batches
        assert all(b["message"] for b in batches)
        # Leaving page 1 with set+buy still queued: one beacon took them.
        beacons = batch_messages([{**b, "type": "beacon"} for b in visit["beacons"]])
        assert len(beacons) == 1, visit["beacons"]
        assert ujson.loads(base64.urlsafe_b64decode(beacons[0]["message"] + "==")) == [[BUY], [["plan", "pro"]]]
        sent = batches + beacons
    else:
        assert visit["transports"] == {"fetch": "undefined", "sendBeacon": "undefined"}
        # One request per group of calls: page 1 (twice: the retry), set+buy,
        # page 2, set+paid, the reload, identify+login, the reload as customer-42.
        sent = [b for b in batches if b["type"] == ("script" if mode == "jsonp" else "image")]
        assert len(sent) == 8, batches
        assert all(("callback" in b) == (mode == "jsonp") and ("img" in b) == (mode == "pixel") for b in sent)
    # identify's visitor rides in the query string, where nginx.conf.example's hash sees it.
    batch_requests = [r for r in visit["requests"] + visit.get("beacons", []) if "/batch" in r["url"]]
    assert any(parse_qs(urlparse(r["url"]).query).get("visitor_id") == ["customer-42"] for r in batch_requests)
    assert not any("visitor_id" in parse_qs(r.get("body", "")) for r in batch_requests)
    # The first batch met a dropped connection and went again under the same
    # insert_id; every other batch has its own.
    insert_ids = [b["insert_id"] for b in sent]
    assert insert_ids[0] == insert_ids[1], sent
    assert len(set(insert_ids)) == len(insert_ids) - 1, sent

    # One visitor across navigation and reload; identify switches it.
    cookies = visit["cookies"]
    assert cookies["page1"] and cookies["page1"] == cookies["page2"] == cookies["reload"], cookies
    assert cookies["identified"] == "customer-42", cookies
    assert set(visit["cookiePaths"].values()) == {path(user_name, bucket)}, visit["cookiePaths"]
    # The page is on another origin: it never learns the cookie's visitor id,
    # only the id it named itself (the pixel's answers are not readable at all).
    assert set(visit["flushed"]) == ({None} if mode == "pixel" else {None, "customer-42"}), visit["flushed"]

    # The reports hold exactly what the page did.  Visitor V: P1, (plan=pro)
    # BUY, P2, (name) PAID, P2 again after the reload; customer-42: LOGIN, P2.
    where = path(user_name, bucket)
    info = (await client.get(where, auth=auth)).json
    ids = {name: record["id"] for name, record in info["events"].items()}
    assert set(ids) == {P1, BUY, P2, PAID, LOGIN}
    assert set(info["properties"].values()) == {"plan", "name"}

    async def event(name: str, **params: str) -> dict:
        answer = await client.get(path(user_name, bucket, "event", name), params or None, auth=auth)
        assert answer.status == 200, answer.body
        return answer.json

    def by_name(counts: dict) -> dict:
        names = {event_id: name for name, event_id in ids.items()}
        return {names[event_id]: n for event_id, n in counts.items() if n}

    expected = {
        P1: (1, 1, {}, {}),
        BUY: (1, 1, {P1: 1}, {P1: 1}),
        P2: (3, 2, {P1: 2, BUY: 2, P2: 1, PAID: 1, LOGIN: 1}, {P1: 1, BUY: 1, P2: 1, PAID: 1, LOGIN: 1}),
        PAID: (1, 1, {P1: 1, BUY: 1, P2: 1}, {P1: 1, BUY: 1, P2: 1}),
        LOGIN: (1, 1, {}, {}),
    }
    for name, (total, unique, paths, unique_paths) in expected.items():
        report = await event(name)
        got = (report["total"], report["unique_total"], by_name(report["path"]), by_name(report["unique_path"]))
        assert got == (total, unique, paths, unique_paths), name

    # Properties, including UTF-8 through base64 in the browser.
    pro = encode_id(value_id(property_id("plan"), "pro"))
    plan = (await client.get(path(user_name, bucket, "property", "plan"), auth=auth)).json
    assert list(plan["values"]) == [pro]
    assert plan["values"][pro]["value"] == "pro"
    assert by_name(plan["values"][pro]["total"]) == {P1: 1, BUY: 1, P2: 1, PAID: 1}
    names = (await client.get(path(user_name, bucket, "property", "name"), auth=auth)).json
    assert [v["value"] for v in names["values"].values()] == [NAME]
    by_plan = await event(P2, property="plan")
    assert by_plan["totals"] == {pro: 2} and by_plan["unique_totals"] == {pro: 1}

    # A funnel over the page's steps, saved and read back, and split by plan.
    steps = [ids[P1], ids[BUY], ids[PAID]]
    funnel_path = path(user_name, bucket, "funnel", "checkout")
    created = await client.post(funnel_path, {"description": "checkout", "event_id": steps}, auth=auth)
    assert created.status == 201, created.body
    funnel = (await client.get(funnel_path, auth=auth)).json
    assert funnel["funnel"] == [[ids[P1], 1], [ids[BUY], 1], [ids[PAID], 1]]
    assert funnel["unique_funnel"] == funnel["funnel"]
    split = await client.get(
        path(user_name, bucket, "funnel"), {"event_id": [ids[P2], ids[LOGIN]], "property": "plan"}, auth=auth
    )
    assert split.status == 200, split.body
    assert split.json["funnels"] == {pro: [[ids[P2], 2], [ids[LOGIN], 0]]}
