"""Operator commands that work on a store directly: ``python -m hiitrack.admin``.

``rebuild --store URI USER/BUCKET`` recomputes a bucket's counters from its
visitors' histories (hiitrack.rebuild); run it while no server writes to the
bucket.  ``import --store URI USER/BUCKET FILE|- [--on-error stop|skip]
[--flush-hits N]`` applies newline-delimited JSON hits (hiitrack.importing),
merged in memory and written N hits at a time (hiitrack.store.buffering).  Progress goes to
stderr; the exit status is 1 if a line was refused.  Tests:
tests/test_rebuild.py, tests/test_import.py.
"""

import argparse
import sys
import time
from collections.abc import Sequence

from twisted.internet import defer, task
from twisted.internet.defer import FirstError

from hiitrack.accounts import bucket_scope
from hiitrack.app import HiiTrack
from hiitrack.importing import Report, import_hits
from hiitrack.rebuild import rebuild
from hiitrack.store import open_store
from hiitrack.store.buffering import FLUSH_BATCHES, Buffered, FlushFailed

__all__ = ["main"]

FLUSH_TIMEOUT = 120.0
"""Seconds a Cassandra node may take over one statement of an import's flush."""


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("a whole number of at least 1")
    return int(text)


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hiitrack.admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rebuilding = commands.add_parser("rebuild", help="recompute a bucket's counters from the visitors' histories")
    rebuilding.add_argument("--store", required=True, help="sqlite:PATH or cassandra://HOST[,HOST...][:PORT]/KEYSPACE")
    rebuilding.add_argument("bucket", metavar="USER/BUCKET")
    importing = commands.add_parser("import", help="apply newline-delimited JSON hits to a bucket")
    importing.add_argument("--store", required=True, help="as for rebuild")
    importing.add_argument("--on-error", choices=["stop", "skip"], default="stop", help="at a bad line (default stop)")
    importing.add_argument(
        "--flush-hits",
        type=_positive,
        default=FLUSH_BATCHES,
        help=f"hits merged in memory before they are written at once (default {FLUSH_BATCHES})",
    )
    importing.add_argument("bucket", metavar="USER/BUCKET")
    importing.add_argument("file", metavar="FILE", help="the hits, one JSON object a line; - for stdin")
    arguments = parser.parse_args(argv)
    user, slash, bucket = arguments.bucket.partition("/")
    if not (user and slash and bucket) or "/" in bucket:
        parser.error("the bucket is USER/BUCKET")
    arguments.user, arguments.bucket_name, arguments.scope = user, bucket, bucket_scope(user, bucket)
    return arguments


async def _rebuild(reactor: object, uri: str, scope: str) -> None:
    store = open_store(uri)
    await store.open()
    started = time.monotonic()

    def progress(visitors: int, hits: int) -> None:
        rate = hits / max(time.monotonic() - started, 1e-9)
        print(f"\r{visitors} visitors, {hits} hits replayed ({rate:.0f} hits/s)", end="", file=sys.stderr)

    try:
        await rebuild(store, scope, progress)
    finally:
        await store.close()
    print(file=sys.stderr)


async def _import(reactor: object, arguments: argparse.Namespace) -> None:
    # A flush may carry tens of thousands of hits: give a busy node time.
    store = Buffered(open_store(arguments.store, request_timeout=FLUSH_TIMEOUT), arguments.flush_hits)
    app = HiiTrack(store)
    await app.start(backfills=False)
    shown, stored = 0.0, 0

    def progress(report: Report, rate: float) -> None:
        nonlocal shown, stored
        if time.monotonic() - shown >= 0.5 or store.flushed != stored:
            shown, stored = time.monotonic(), store.flushed
            print(
                f"\r{report.applied} hits, {report.events} events ({rate:.0f} events/s), {stored} hits stored",
                end="",
                file=sys.stderr,
            )

    try:
        try:
            if await app.accounts.user(arguments.user) is None:
                raise SystemExit(f"no user {arguments.user}")
            source = sys.stdin if arguments.file == "-" else open(arguments.file, encoding="utf-8")
            with source:
                report = await import_hits(
                    app, arguments.user, arguments.bucket_name, source, arguments.on_error == "skip", progress
                )
        finally:
            await app.stop()
    except (FlushFailed, FirstError) as error:
        reason = error.subFailure.getErrorMessage() if isinstance(error, FirstError) else str(error)
        raise SystemExit(
            f"\nthe import stopped: {reason}\n{store.flushed} hits are stored; with insert_id in every line,"
            ' importing the same file again applies the others (docs/api.md, "Rebuild and import")'
        ) from None
    print(
        f"\r{report.applied} hits, {report.events} events applied, {report.duplicates} duplicates,"
        f" {len(report.refused)} refused",
        file=sys.stderr,
    )
    for line, reason in report.refused:
        print(f"line {line}: {reason}", file=sys.stderr)
    if report.refused:
        raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = _arguments(sys.argv[1:] if argv is None else argv)
    if arguments.command == "rebuild":
        task.react(lambda reactor: defer.ensureDeferred(_rebuild(reactor, arguments.store, arguments.scope)))
    else:
        task.react(lambda reactor: defer.ensureDeferred(_import(reactor, arguments)))


if __name__ == "__main__":
    main()
