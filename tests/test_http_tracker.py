"""The tracker script resource and CORS of the tracking routes, over HTTP.

The browser side of the same is tests/test_tracker_browser.py.
"""

from urllib.parse import quote

import pytest
import pytest_twisted

from hiitrack.web.static import STATIC
from tests.http import b64json, path

ORIGIN = "http://shop.example.com:8080"
MESSAGE = b64json([["Viewed"], [["plan", "pro"]]])


@pytest_twisted.ensureDeferred
async def test_script_is_served_with_type_cache_and_etag(server):
    answer = await server.client.get("/hiitrack.js")
    assert answer.status == 200
    assert answer.body == (STATIC / "hiitrack.js").read_bytes()
    assert answer.header("Content-Type").startswith("application/javascript")
    assert answer.header("Cache-Control") == "public, max-age=604800"
    assert answer.header("Access-Control-Allow-Origin") == "*"
    etag = answer.header("ETag")
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10

    again = await server.client.get("/hiitrack.js", headers={"If-None-Match": etag})
    assert again.status == 304
    assert again.body == b""
    assert again.header("ETag") == etag

    other = await server.client.get("/hiitrack.js", headers={"If-None-Match": '"something-else"'})
    assert other.status == 200
    assert other.body == answer.body

    busted = await server.client.get("/hiitrack.js", {"v": "2"})
    assert busted.status == 200 and busted.header("ETag") == etag


@pytest_twisted.ensureDeferred
async def test_script_head_has_headers_and_no_body(server):
    answer = await server.client.request("HEAD", "/hiitrack.js")
    assert answer.status == 200
    assert answer.body == b""
    assert answer.header("ETag") is not None


def tracking_requests(user: str) -> list[tuple[str, str, dict]]:
    return [
        ("POST", path(user, "site", "event", "Signed up"), {"visitor_id": "v1"}),
        ("POST", path(user, "site", "property", "plan"), {"visitor_id": "v1", "value": b64json("pro")}),
        ("POST", path(user, "site", "batch"), {"message": MESSAGE}),
        ("GET", path(user, "site", "batch"), {"message": MESSAGE}),
    ]


@pytest_twisted.ensureDeferred
async def test_tracking_routes_allow_the_requesting_origin_with_credentials(server, user_name):
    client = server.client
    assert (await client.post(path(user_name), {"password": "pw-secret"})).status == 201
    for method, where, params in tracking_requests(user_name):
        options = {"params": params} if method == "GET" else {"data": params}
        answer = await client.request(method, where, headers={"Origin": ORIGIN}, **options)
        assert answer.status == 200, (method, where, answer.body)
        assert answer.header("Access-Control-Allow-Origin") == ORIGIN, where
        assert answer.header("Access-Control-Allow-Credentials") == "true", where
        assert "Origin" in answer.header("Vary"), where


@pytest_twisted.ensureDeferred
async def test_tracking_errors_are_readable_cross_origin(server, user_name):
    # A refused message still tells the page why (and the visitor).
    answer = await server.client.get(
        path(user_name, "site", "batch"), {"message": "not base64!"}, headers={"Origin": ORIGIN}
    )
    assert answer.status in (400, 404)
    assert answer.header("Access-Control-Allow-Origin") == ORIGIN


@pytest_twisted.ensureDeferred
async def test_no_cors_without_origin(server, user_name):
    assert (await server.client.post(path(user_name), {"password": "pw-secret"})).status == 201
    answer = await server.client.get(path(user_name, "site", "batch"), {"message": MESSAGE})
    assert answer.status == 200
    assert answer.header("Access-Control-Allow-Origin") is None
    assert answer.header("Vary") == "Origin"


@pytest_twisted.ensureDeferred
async def test_reports_and_accounts_are_not_open_cross_origin(server, user_name):
    client = server.client
    auth = (user_name, "pw-secret")
    assert (await client.post(path(user_name), {"password": "pw-secret"})).status == 201
    assert (await client.post(path(user_name, "site", "event", "A"), {"visitor_id": "v1"})).status == 200
    for where in [
        path(user_name),
        path(user_name, "site"),
        path(user_name, "site", "event", "A"),
        path(user_name, "site", "property", "plan"),
        path(user_name, "site", "funnel"),
    ]:
        answer = await client.get(where, auth=auth, headers={"Origin": ORIGIN})
        assert answer.header("Access-Control-Allow-Origin") is None, where
        assert answer.header("Access-Control-Allow-Credentials") is None, where


@pytest.mark.parametrize(
    "where,method,methods",
    [
        (("event", "Signed up"), "POST", "POST"),
        (("property", "plan"), "POST", "POST"),
        (("batch",), "POST", "GET, POST"),
        (("batch",), "GET", "GET, POST"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_preflight_is_answered(server, user_name, where, method, methods):
    answer = await server.client.request(
        "OPTIONS",
        path(user_name, "site", *where),
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert answer.status == 204
    assert answer.body == b""
    assert answer.header("Access-Control-Allow-Origin") == ORIGIN
    assert answer.header("Access-Control-Allow-Credentials") == "true"
    assert answer.header("Access-Control-Allow-Methods") == methods
    assert "content-type" in answer.header("Access-Control-Allow-Headers").lower()
    assert int(answer.header("Access-Control-Max-Age")) > 0
    assert "Origin" in answer.header("Vary")
    # A preflight records nothing: the user does not even exist.
    assert (await server.client.get(path(user_name), auth=(user_name, "pw-secret"))).status == 401


@pytest_twisted.ensureDeferred
async def test_preflight_for_a_report_method_is_not_allowed(server, user_name):
    answer = await server.client.request(
        "OPTIONS",
        path(user_name, "site", "event", "A"),
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert answer.header("Access-Control-Allow-Origin") is None
    assert "GET" not in (answer.header("Access-Control-Allow-Methods") or "")


@pytest_twisted.ensureDeferred
async def test_options_elsewhere_stays_405(server, user_name):
    answer = await server.client.request("OPTIONS", path(user_name, "site"), headers={"Origin": ORIGIN})
    assert answer.status == 405
    assert answer.header("Access-Control-Allow-Origin") is None


@pytest_twisted.ensureDeferred
async def test_an_empty_batch_names_the_visitor(server, user_name):
    # The tracker's identify sends one so the cookie switches at once.
    assert (await server.client.post(path(user_name), {"password": "pw-secret"})).status == 201
    answer = await server.client.post(
        path(user_name, "site", "batch"), {"message": b64json([[], []]), "visitor_id": "customer-42"}
    )
    assert answer.status == 200
    assert answer.json["visitor_id"] == "customer-42"
    assert answer.cookie("v") == "customer-42"


@pytest_twisted.ensureDeferred
async def test_cross_origin_callers_do_not_learn_the_visitor_of_the_cookie(server, user_name):
    """The ``v`` cookie is HttpOnly: no other site may read it back out of an
    answer, through CORS or JSONP.  A caller learns a visitor id only when it
    sent one itself; the server's own origin and clients that are not
    browsers (no Origin) are told as before."""
    client = server.client
    assert (await client.post(path(user_name), {"password": "pw-secret"})).status == 201
    where = path(user_name, "site", "batch")
    secret = "jane@example.com"
    cookies = {"v": quote(secret, safe="")}

    cross = await client.post(where, {"message": MESSAGE}, headers={"Origin": ORIGIN}, cookies=cookies)
    assert (cross.status, cross.json) == (200, {})
    jsonp = await client.get(where, {"message": MESSAGE, "callback": "steal"}, cookies=cookies)
    assert (jsonp.status, jsonp.body) == (200, b"steal({});")
    refused = await client.get(where, {"message": "not base64!"}, headers={"Origin": ORIGIN}, cookies=cookies)
    assert refused.status == 400 and "visitor_id" not in refused.json
    for answer in (cross, jsonp, refused):
        assert secret.encode() not in answer.body and b"jane" not in answer.body
        assert answer.cookie("v") is None  # the cookie is not set again either

    # A new visitor gets its cookie, but a cross-origin caller is not told its id.
    new = await client.post(where, {"message": MESSAGE}, headers={"Origin": ORIGIN})
    assert new.json == {} and new.cookie("v")
    # A caller that names the visitor is told the name it sent.
    named = await client.post(where, {"message": MESSAGE, "visitor_id": "v7"}, headers={"Origin": ORIGIN})
    assert named.json == {"visitor_id": "v7"}
    jsonp = await client.get(where, {"message": MESSAGE, "visitor_id": "v7", "callback": "cb"})
    assert jsonp.body == b'cb({"visitor_id":"v7"});'

    same = await client.post(where, {"message": MESSAGE}, headers={"Origin": server.url}, cookies=cookies)
    assert same.json == {"visitor_id": secret}
    plain = await client.post(where, {"message": MESSAGE}, cookies=cookies)
    assert plain.json == {"visitor_id": secret}

    # Every one of those hits was recorded, for the right visitor.
    report = (await client.get(path(user_name, "site", "event", "Viewed"), auth=(user_name, "pw-secret"))).json
    assert (report["total"], report["unique_total"]) == (7, 3)


@pytest_twisted.ensureDeferred
async def test_the_null_origin_gets_no_cors(server, user_name):
    """``Origin: null`` is every sandboxed frame and local file at once: it
    is not allowed to read answers with the visitor's cookie."""
    assert (await server.client.post(path(user_name), {"password": "pw-secret"})).status == 201
    for method, where, params in tracking_requests(user_name):
        options = {"params": params} if method == "GET" else {"data": params}
        answer = await server.client.request(method, where, headers={"Origin": "null"}, **options)
        assert answer.status == 200, (method, where, answer.body)
        assert answer.header("Access-Control-Allow-Origin") is None
        assert answer.header("Access-Control-Allow-Credentials") is None
    answer = await server.client.request(
        "OPTIONS", path(user_name, "site", "batch"), headers={"Origin": "null", "Access-Control-Request-Method": "POST"}
    )
    assert answer.header("Access-Control-Allow-Origin") is None


def _set_cookie(answer) -> str:
    (line,) = [line for line in answer.headers.getRawHeaders("Set-Cookie") if line.startswith("v=")]
    return line


@pytest_twisted.ensureDeferred
async def test_the_visitor_cookie_belongs_to_one_bucket(server, user_name):
    """Every tenant of the host shares its cookies: a ``v`` cookie of Path=/
    would carry the id one site gave (say, an identified e-mail address)
    into every other site's reports."""
    assert (await server.client.post(path(user_name), {"password": "pw-secret"})).status == 201
    for method, where, params in tracking_requests(user_name):
        options = {"params": params} if method == "GET" else {"data": params}
        answer = await server.client.request(method, where, **options)
        attributes = [part.strip() for part in _set_cookie(answer).split(";")]
        assert f"Path=/{user_name}/site" in attributes, attributes
        assert "HttpOnly" in attributes


@pytest_twisted.ensureDeferred
async def test_the_first_of_several_v_cookies_wins(server, user_name):
    """Browsers list the cookie with the longest path first (RFC 6265 5.4):
    this bucket's own cookie comes before any older, wider one."""
    assert (await server.client.post(path(user_name), {"password": "pw-secret"})).status == 201
    where = path(user_name, "site", "batch")
    answer = await server.client.post(
        where, {"message": MESSAGE}, headers={"Cookie": "v=mine; other=1; v=older; v=oldest"}
    )
    assert answer.json == {"visitor_id": "mine"}
    assert answer.cookie("v") is None
