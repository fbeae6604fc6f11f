"""/{user}/{bucket}/dashboard: the bucket's reports as a page for people.

The page is plain HTML, CSS and JavaScript from hiitrack/static/dashboard/
(no build step); its script reads the same JSON routes as any client, with
the credentials the browser asked for.  The page needs them too (password,
or the user name and the bucket's access key), and says which kind they
were so read-only viewers get no write controls; the server refuses their
writes anyway.  Its files (``/{user}/{bucket}/dashboard/NAME``) hold no data
and are open and revalidated by ETag on every use, so a new
version of HiiTrack is seen at once.  A Content-Security-Policy keeps every
request on this origin.  Tests: tests/test_dashboard.py,
tests/test_dashboard_browser.py.
"""

import functools

from twisted.web.server import Request

from hiitrack.errors import NotFound
from hiitrack.web.access import authorize, existing_bucket
from hiitrack.web.bucket import BucketResource
from hiitrack.web.params import Params
from hiitrack.web.render import ApiResource, Raw
from hiitrack.web.static import STATIC, StaticFile

__all__ = ["Dashboard"]

FOLDER = STATIC / "dashboard"
CONTENT_TYPES = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
}
# Only what the page itself needs; uPlot styles its elements through the
# CSSOM, which style-src does not restrict.
POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@functools.cache
def dashboard_files() -> dict[bytes, StaticFile]:
    """The page's scripts and stylesheets (vendored ones too) by file name, read once."""
    return {
        file.name.encode(): StaticFile(file.relative_to(STATIC).as_posix(), CONTENT_TYPES[file.suffix], max_age=0)
        for file in sorted(FOLDER.rglob("*"))
        if file.suffix in CONTENT_TYPES
    }


@functools.cache
def page_template() -> bytes:
    return (FOLDER / "index.html").read_bytes()


class Dashboard(BucketResource):
    route = "/{user}/{bucket}/dashboard"

    def child(self, path: bytes, request: Request) -> ApiResource:
        file = dashboard_files().get(path)
        if file is None:
            raise NotFound("no such file")
        return file

    async def handle_GET(self, request: Request, params: Params) -> Raw:
        access = await authorize(self.app, request, self.user, self.bucket)
        await existing_bucket(self.app, self.user, self.bucket)
        access_name = b"read" if access.read_only else b"write"
        request.setHeader(b"Cache-Control", b"private, no-cache")
        request.setHeader(b"Content-Security-Policy", POLICY)
        request.setHeader(b"Referrer-Policy", b"no-referrer")
        return Raw(page_template().replace(b"{{access}}", access_name), b"text/html; charset=utf-8")
