"""`twistd hiitrack`: command-line options and the service they build.

Kept apart from the plugin file so that ``twistd --help`` does not import
the application.  Tests: tests/test_tap.py.
"""

import os

from twisted.application import service, strports
from twisted.internet import defer, reactor
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

__all__ = ["Options", "makeService"]


class Options(usage.Options):
    synopsis = "[--port PORT] [--store URI]"
    longdesc = "HiiTrack: funnel analytics over HTTP (see README.md and docs/api.md)."
    optParameters = [
        ["port", "p", "8080", "Port number or Twisted endpoint string, e.g. tcp:8080:interface=127.0.0.1."],
        [
            "store",
            "s",
            "sqlite:hiitrack.db",
            "Where data lives: sqlite:PATH (embedded, the default) or cassandra://HOST[,HOST...][:PORT]/KEYSPACE.",
        ],
        [
            "cassandra-replication",
            None,
            "SimpleStrategy:1",
            "Replication of a keyspace the Cassandra store creates: SimpleStrategy:N or "
            "NetworkTopologyStrategy:DC=N[,DC=N...].",
        ],
        [
            "cassandra-consistency",
            None,
            "LOCAL_QUORUM",
            "Consistency level of the Cassandra store's reads and writes, e.g. ONE, LOCAL_QUORUM, QUORUM.",
        ],
        [
            "metrics-auth",
            None,
            None,
            "USER:PASS of the operator account that may read /metrics (Prometheus); without it /metrics is off.",
        ],
        ["visitor-cache", None, 100000, "How many visitors' states to keep in memory.", int],
        ["visitor-cache-seconds", None, 60.0, "Seconds a cached visitor state is trusted after its write.", float],
        ["limits", None, "", "Caps, NAME=N[,NAME=N...], e.g. hit-cells=50000 (names and defaults: docs/api.md)."],
        ["idle-timeout", None, 60.0, "Seconds before an idle connection is closed.", float],
    ]

    def postOptions(self) -> None:
        auth = self["metrics-auth"]
        if auth is not None and not (":" in auth and auth.split(":", 1)[0] and auth.split(":", 1)[1]):
            raise usage.UsageError("--metrics-auth must be USER:PASS, both non-empty")
        port = self["port"]
        if port.isdigit():
            self["port"] = f"tcp:{port}"
        store = self["store"]
        if not (store.startswith("sqlite:") or store.startswith("cassandra://")):
            raise usage.UsageError("--store must be sqlite:PATH or cassandra://HOST[,HOST...][:PORT]/KEYSPACE")
        if self["visitor-cache"] < 1:
            raise usage.UsageError("--visitor-cache must be at least 1")
        from hiitrack.limits import Limits

        try:
            self["limits"] = Limits.parse(self["limits"])
        except ValueError as error:
            raise usage.UsageError(f"--limits: {error}") from None


class HiiTrackService(service.MultiService):
    """Opens the store before listening and closes it after the last request."""

    def __init__(self, options: Options) -> None:
        super().__init__()
        from hiitrack.app import HiiTrack
        from hiitrack.store import open_store
        from hiitrack.web.site import make_site

        store = open_store(
            options["store"],
            replication=options["cassandra-replication"],
            consistency=options["cassandra-consistency"],
        )
        metrics_auth = options["metrics-auth"]
        self.app = HiiTrack(
            store,
            visitor_cache_size=options["visitor-cache"],
            visitor_cache_seconds=options["visitor-cache-seconds"],
            limits=options["limits"],
            metrics_auth=None if metrics_auth is None else tuple(metrics_auth.split(":", 1)),
        )
        site = make_site(self.app, idle_timeout=options["idle-timeout"])
        strports.service(options["port"], site).setServiceParent(self)

    def privilegedStartService(self) -> None:
        """Listen only in startService, once the store is open.

        A port below 1024 therefore needs a proxy in front (nginx.conf.example)
        rather than twistd's privilege dropping.
        """

    def startService(self) -> None:
        def listen(_: object) -> None:
            service.MultiService.startService(self)

        def failed(failure: Failure) -> None:
            Logger().failure("could not open the store; stopping", failure)
            # twistd has no exit status of its own for this: leave with 1 so
            # that supervisors see the failure and restart the server.
            reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
            reactor.stop()

        defer.ensureDeferred(self.app.start()).addCallbacks(listen, failed)

    def stopService(self) -> defer.Deferred:
        stopped = defer.maybeDeferred(service.MultiService.stopService, self)
        return stopped.addCallback(lambda _: defer.ensureDeferred(self.app.stop()))


def makeService(options: Options) -> service.IService:
    return HiiTrackService(options)
