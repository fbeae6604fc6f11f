"""The dashboard's page and files over HTTP, and its vendored chart library.

The page needs the same credentials as the bucket overview and says which
kind they were; its files are open, typed and revalidated by ETag; every
file the page and its modules refer to is served; the vendored uPlot is the
one SHA256SUMS names.  What the page shows is checked in a real browser by
tests/test_dashboard_browser.py.
"""

import hashlib
import re

import pytest_twisted

from hiitrack.web.dashboard import FOLDER, dashboard_files
from tests.helpers import auth_of, batch, new_user, path

VENDOR = FOLDER / "vendor"


async def _bucket(server, user: str) -> str:
    """A user with bucket b; its access key."""
    await new_user(server.client, user)
    await batch(server.client, user, "b", "v1", ["A", "B"], [["plan", "pro"]])
    return (await server.client.get(path(user, "b"), auth=auth_of(user))).json["access_key"]


@pytest_twisted.ensureDeferred
async def test_the_page_says_whether_the_viewer_may_write(server, user_name):
    key = await _bucket(server, user_name)
    for auth, access in ((auth_of(user_name), "write"), ((user_name, key), "read")):
        answer = await server.client.get(path(user_name, "b", "dashboard"), auth=auth)
        assert answer.status == 200, answer.body
        assert answer.header("Content-Type") == "text/html; charset=utf-8"
        assert f'<body data-access="{access}">' in answer.body.decode()
        assert answer.header("Cache-Control") == "private, no-cache"
        policy = answer.header("Content-Security-Policy")
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "script-src 'self'" in policy


@pytest_twisted.ensureDeferred
async def test_the_page_needs_the_buckets_credentials(server, user_name):
    key = await _bucket(server, user_name)
    where = path(user_name, "b", "dashboard")
    for auth in (None, (user_name, "wrong password"), (user_name + "x", key)):
        answer = await server.client.get(where, auth=auth)
        assert answer.status == 401, answer.body
        assert answer.header("WWW-Authenticate") == 'Basic realm="hiitrack"'
        assert "data-access" not in answer.body.decode()
    missing = await server.client.get(path(user_name, "nope", "dashboard"), auth=auth_of(user_name))
    assert missing.status == 404 and "error" in missing.json
    other_bucket = await server.client.get(path(user_name, "nope", "dashboard"), auth=(user_name, key))
    assert other_bucket.status == 401
    post = await server.client.post(where, {}, auth=auth_of(user_name))
    assert post.status == 405 and post.header("Allow") == "GET, HEAD"


@pytest_twisted.ensureDeferred
async def test_files_are_typed_and_revalidated(server, user_name):
    for name, content_type in (
        ("main.js", "text/javascript; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
        ("uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        ("uPlot.min.css", "text/css; charset=utf-8"),
    ):
        where = path(user_name, "b", "dashboard", name)
        answer = await server.client.get(where)
        assert answer.status == 200, (name, answer.body[:200])
        assert answer.header("Content-Type") == content_type
        assert answer.header("Cache-Control") == "public, max-age=0"
        folder = VENDOR if name.startswith("uPlot") else FOLDER
        assert answer.body == (folder / name).read_bytes()
        again = await server.client.get(where, headers={"If-None-Match": answer.header("ETag")})
        assert again.status == 304 and again.body == b""
    for name in ("index.html", "LICENSE", "SHA256SUMS", "nope.js", "..%2Fopenapi.json"):
        answer = await server.client.get(f"{path(user_name, 'b', 'dashboard')}/{name}")
        assert answer.status == 404, name
        assert "error" in answer.json


def test_every_file_the_page_names_is_served():
    served = {name.decode() for name in dashboard_files()}
    page = (FOLDER / "index.html").read_text()
    named = set(re.findall(r'(?:src|href)="dashboard/([^"]+)"', page))
    assert named == {"uPlot.min.css", "dashboard.css", "uPlot.iife.min.js", "main.js"}
    imported = set()
    for module in FOLDER.glob("*.js"):
        imported |= set(re.findall(r"from '\./([^']+)'", module.read_text()))
    assert imported == {file.name for file in FOLDER.glob("*.js")} - {"main.js"}
    assert named | imported <= served
    for module in FOLDER.glob("*.js"):
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", module.read_text()), module.name


def test_vendored_files_match_their_checksums():
    listed = {}
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        listed[name] = digest
    assert set(listed) == {file.name for file in VENDOR.iterdir()} - {"SHA256SUMS", "README.md"}
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    version = (VENDOR / "VERSION").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert f"uPlot@{version}" in (VENDOR / "README.md").read_text()
    assert "MIT License" in (VENDOR / "LICENSE").read_text()


def test_all_the_files_together_stay_small():
    """The page and every file it could load, uncompressed, well under the first load's 200 KB."""
    total = sum(len(file.body) for file in dashboard_files().values()) + len((FOLDER / "index.html").read_bytes())
    assert total < 150_000
