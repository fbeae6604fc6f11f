"""`twistd hiitrack`: command-line options and the service they build.

Kept apart from the plugin file so that ``twistd --help`` does not import
the application.  A bare port number listens on loopback only: HiiTrack is
meant to sit behind a proxy (nginx.conf.example); an endpoint string says
otherwise when wanted.  The operator's metrics secret never comes from the
command line, which every local user can read in /proc/PID/cmdline: it comes
from a file or from the environment (readable by the same user only).
Tests: tests/test_tap.py.
"""

import gc
import os
import socket

from twisted.application import service, strports
from twisted.internet import defer, reactor
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from hiitrack import __version__
from hiitrack.backfill import LEASE_SECONDS
from hiitrack.native import build
from hiitrack.web.defaults import ACCESS_LOG_OFF, ACCESS_LOG_TWISTD, BODY_TIMEOUT, HEADER_TIMEOUT, IDLE_TIMEOUT

__all__ = ["METRICS_AUTH_VARIABLE", "Options", "makeService"]

METRICS_AUTH_VARIABLE = "HIITRACK_METRICS_AUTH"
LOOPBACK = "127.0.0.1"


def _writable_file_path(path: str) -> bool:
    """Whether `path` names a file (existing or not) in an existing folder."""
    return bool(path) and not os.path.isdir(path) and os.path.isdir(os.path.dirname(os.path.abspath(path)))


class Options(usage.Options):
    synopsis = "[--port PORT] [--store URI]"
    longdesc = "HiiTrack: funnel analytics over HTTP (see README.md and docs/api.md)."
    optParameters = [
        [
            "port",
            "p",
            "8080",
            f"Port number (listens on {LOOPBACK} only) or Twisted endpoint string, e.g. tcp:8080:interface=0.0.0.0.",
        ],
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
            "cassandra-writer",
            None,
            None,
            "The Cassandra store's name for this process's journal and counter cells: unique among the "
            "processes, and the same after a restart, which folds what the journal still holds.  "
            "Default: HOSTNAME:PORT.",
        ],
        [
            "metrics-auth-file",
            None,
            None,
            "File holding USER:PASS of the operator who may read /metrics (Prometheus); or set "
            f"{METRICS_AUTH_VARIABLE}=USER:PASS.  Without either /metrics is off.",
        ],
        ["metrics-auth", None, None, "Refused: it would show the secret to every local user; see --metrics-auth-file."],
        ["visitor-cache", None, 100000, "How many visitors' states to keep in memory.", int],
        ["visitor-cache-seconds", None, 60.0, "Seconds a cached visitor state is trusted after its write.", float],
        [
            "backfill-lease",
            None,
            LEASE_SECONDS,
            "Seconds a backfill's process may stay silent before another process takes the backfill over.",
            float,
        ],
        [
            "backfill-through",
            None,
            None,
            "With several processes behind nginx: nginx's URL (e.g. http://127.0.0.1:8080), through which "
            "a backfill has each visitor counted by the process that serves it.",
        ],
        [
            "access-log",
            None,
            ACCESS_LOG_TWISTD,
            f"Where the access log goes: {ACCESS_LOG_TWISTD} (twistd's log), {ACCESS_LOG_OFF} (behind nginx, "
            "which logs the same), or a file's path (buffered, flushed every second: the cheapest that keeps it).",
        ],
        ["limits", None, "", "Caps, NAME=N[,NAME=N...], e.g. hit-cells=50000 (names and defaults: docs/api.md)."],
        ["idle-timeout", None, IDLE_TIMEOUT, "Seconds before an idle connection is closed.", float],
        ["header-timeout", None, HEADER_TIMEOUT, "Seconds a request's line and headers may take to arrive.", float],
        ["body-timeout", None, BODY_TIMEOUT, "Seconds a request's body may take to arrive after its headers.", float],
    ]
    optFlags = [
        [
            "no-history",
            None,
            "Keep no visitor history: for measuring the history's cost only (scripts/bench --costs); "
            "erase, rebuild and backfill need the history.",
        ],
    ]

    # The operator's (login, password) for /metrics, from a file or the environment.
    metrics_auth: tuple[str, str] | None = None

    def postOptions(self) -> None:
        port = self["port"]
        if self["cassandra-writer"] is None:
            self["cassandra-writer"] = f"{socket.gethostname()}:{port}"
        if port.isdigit():
            self["port"] = f"tcp:{port}:interface={LOOPBACK}"
        store = self["store"]
        if not (store.startswith("sqlite:") or store.startswith("cassandra://")):
            raise usage.UsageError("--store must be sqlite:PATH or cassandra://HOST[,HOST...][:PORT]/KEYSPACE")
        if self["backfill-lease"] <= 0:
            raise usage.UsageError("--backfill-lease must be more than 0")
        through = self["backfill-through"]
        if through is not None and not (through.startswith("http://") and len(through) > len("http://")):
            raise usage.UsageError("--backfill-through must be an http:// URL: nginx's listener for the processes")
        destination = self["access-log"]
        if destination not in (ACCESS_LOG_TWISTD, ACCESS_LOG_OFF) and not _writable_file_path(destination):
            raise usage.UsageError(
                f"--access-log must be {ACCESS_LOG_TWISTD}, {ACCESS_LOG_OFF}, or a file in an existing folder"
            )
        if self["visitor-cache"] < 1:
            raise usage.UsageError("--visitor-cache must be at least 1")
        from hiitrack.limits import Limits

        try:
            self["limits"] = Limits.parse(self["limits"])
        except ValueError as error:
            raise usage.UsageError(f"--limits: {error}") from None
        for timeout in ("idle-timeout", "header-timeout", "body-timeout"):
            if not self[timeout] > 0:
                raise usage.UsageError(f"--{timeout} must be a positive number of seconds")
        self.metrics_auth = self._metrics_auth()

    def _metrics_auth(self) -> tuple[str, str] | None:
        if self["metrics-auth"] is not None:
            raise usage.UsageError(
                "--metrics-auth would put the secret on the command line, which every local user can read; "
                f"use --metrics-auth-file PATH or the {METRICS_AUTH_VARIABLE} environment variable"
            )
        path, variable = self["metrics-auth-file"], os.environ.get(METRICS_AUTH_VARIABLE)
        if path is not None and variable is not None:
            raise usage.UsageError(f"give --metrics-auth-file or {METRICS_AUTH_VARIABLE}, not both")
        if path is not None:
            try:
                with open(path, encoding="utf-8") as secret:
                    text = secret.read().removesuffix("\n").removesuffix("\r")
            except (OSError, UnicodeDecodeError) as error:
                raise usage.UsageError(f"cannot read --metrics-auth-file: {error}") from None
        elif variable is not None:
            text = variable
        else:
            return None
        login, colon, password = text.partition(":")
        if not (login and colon and password) or any(char in text for char in "\r\n"):
            raise usage.UsageError("the metrics credentials must be one line USER:PASS, both non-empty")
        return login, password


def _freeze_startup_objects() -> None:
    """Leave what startup made (modules, classes, the store's and the driver's objects: about
    60,000 objects) out of the collector's walks from now on.

    They live as long as the process, yet each full collection walked them all: 60 to 75 ms
    of the reactor thread, about every 2.5 s under event load.  Collected first, so no garbage
    is kept.  The collector's thresholds stay Python's own: cycles made later are collected as
    often as before.
    """
    gc.collect()
    gc.freeze()


class HiiTrackService(service.MultiService):
    """Opens the store before listening and closes it after the last request."""

    def __init__(self, options: Options) -> None:
        super().__init__()
        from hiitrack.app import HiiTrack
        from hiitrack.sending import listening_reactor
        from hiitrack.store import open_store
        from hiitrack.web.site import make_site

        store = open_store(
            options["store"],
            replication=options["cassandra-replication"],
            consistency=options["cassandra-consistency"],
            writer=options["cassandra-writer"],
        )
        self.app = HiiTrack(
            store,
            visitor_cache_size=options["visitor-cache"],
            visitor_cache_seconds=options["visitor-cache-seconds"],
            backfill_lease=options["backfill-lease"],
            limits=options["limits"],
            metrics_auth=options.metrics_auth,
            keep_history=not options["no-history"],
            backfill_through=options["backfill-through"],
        )
        site = make_site(
            self.app,
            idle_timeout=options["idle-timeout"],
            header_timeout=options["header-timeout"],
            body_timeout=options["body-timeout"],
            access_log=options["access-log"],
        )
        strports.service(options["port"], site, reactor=listening_reactor(reactor)).setServiceParent(self)
        self.started: defer.Deferred[None] = defer.Deferred()
        """Fires once the store is open and the site listens."""

    def privilegedStartService(self) -> None:
        """Listen only in startService, once the store is open.

        A port below 1024 therefore needs a proxy in front (nginx.conf.example)
        rather than twistd's privilege dropping.
        """

    def startService(self) -> None:
        def listen(_: object) -> None:
            Logger().info("HiiTrack {version}: the hot path is {build}", version=__version__, build=build())
            _freeze_startup_objects()
            service.MultiService.startService(self)
            self.started.callback(None)

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
