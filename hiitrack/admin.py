"""Operator commands that work on a store directly: ``python -m hiitrack.admin``.

``rebuild --store URI USER/BUCKET`` recomputes a bucket's counters from its
visitors' histories (hiitrack.rebuild); run it while no server writes to the
bucket.  Progress goes to stderr.  Tests: tests/test_rebuild.py.
"""

import argparse
import sys
import time
from collections.abc import Sequence

from twisted.internet import defer, task

from hiitrack.accounts import bucket_scope
from hiitrack.rebuild import rebuild
from hiitrack.store import open_store

__all__ = ["main"]


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hiitrack.admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rebuilding = commands.add_parser("rebuild", help="recompute a bucket's counters from the visitors' histories")
    rebuilding.add_argument("--store", required=True, help="sqlite:PATH or cassandra://HOST[,HOST...][:PORT]/KEYSPACE")
    rebuilding.add_argument("bucket", metavar="USER/BUCKET")
    arguments = parser.parse_args(argv)
    user, slash, bucket = arguments.bucket.partition("/")
    if not (user and slash and bucket) or "/" in bucket:
        parser.error("the bucket is USER/BUCKET")
    arguments.scope = bucket_scope(user, bucket)
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


def main(argv: Sequence[str] | None = None) -> None:
    arguments = _arguments(sys.argv[1:] if argv is None else argv)
    task.react(lambda reactor: defer.ensureDeferred(_rebuild(reactor, arguments.store, arguments.scope)))


if __name__ == "__main__":
    main()
