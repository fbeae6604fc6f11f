"""A backfill's visitors counted by the processes that serve them, through nginx.

With several processes behind nginx, each visitor's hits go to one of them
(visitor-sticky routing), and the per-visitor order that keeps a visitor
from being counted twice lives in that process.  A backfill's sweep runs in
one process, so with ``--backfill-through URL`` (nginx's address) it does
not count a visitor itself: it sends ``POST
/{user}/{bucket}/funnel/{name}/backfill`` with the visitor's id in the query
string, as hits carry it, and nginx hands it to the process that serves the
visitor, which counts it under the visitor's order
(web/funnels.py, `FunnelBackfill`).  The request is signed with the
installation's secret, which every process of the installation reads from
the store.  Tests: tests/test_backfill.py.
"""

from collections.abc import Callable
from urllib.parse import quote, urlencode

import ujson
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers

__all__ = ["SIGNATURE_HEADER", "Forwarder", "backfill_message"]

SIGNATURE_HEADER = "X-HiiTrack-Signature"
TIMEOUT_SECONDS = 60.0
"""A visitor's history is read and counted in the time of a hit or a few."""


def backfill_message(scope: str, name: str, version: str, visitor_id: str) -> bytes:
    """What a forwarded count signs: every part of the request that decides what is counted."""
    return ujson.dumps(["backfill", scope, name, version, visitor_id]).encode()


def _segment(text: str) -> str:
    """Percent-encoded as the tracker encodes ids, so that nginx routes on the same bytes."""
    return quote(text, safe="")


class Forwarder:
    """Sends each visitor of a sweep to the process nginx routes that visitor to."""

    def __init__(self, through: str, sign: Callable[[bytes], str], connections: int) -> None:
        self._through = through.rstrip("/")
        self._sign = sign
        pool = HTTPConnectionPool(reactor)
        pool.maxPersistentPerHost = connections
        self._agent = Agent(reactor, pool=pool, connectTimeout=TIMEOUT_SECONDS)

    async def count(self, scope: str, name: str, version: str, visitor_id: str) -> bool:
        """True once the visitor's process counted it (or found it counted); False if the funnel or bucket is gone.

        Raises `ForwardingFailed` for any other answer: the sweep stops, and
        resumes from its last page once its lease runs out.
        """
        user, bucket = scope.split("/", 1)
        query = urlencode({"visitor_id": visitor_id, "version": version}, quote_via=quote, safe="")
        url = f"{self._through}/{_segment(user)}/{_segment(bucket)}/funnel/{_segment(name)}/backfill?{query}"
        headers = Headers({SIGNATURE_HEADER: [self._sign(backfill_message(scope, name, version, visitor_id))]})
        answered: Deferred = self._agent.request(b"POST", url.encode("ascii"), headers)
        answered.addTimeout(TIMEOUT_SECONDS, reactor)
        response = await answered
        body = await readBody(response)
        if response.code == 404:
            return False
        if response.code != 200:
            raise ForwardingFailed(f"counting {visitor_id!r} through {self._through}: {response.code} {body[:200]!r}")
        return True


class ForwardingFailed(Exception):
    """The process of a visitor did not count it (down, or nginx could not reach it)."""
