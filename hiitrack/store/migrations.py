"""Schema versions, as both backends keep them.

A backend's ``schema`` package holds one module per version, ``v001``,
``v002``, …, each with ``STATEMENTS``: the statements that bring the schema
from the previous version to this one, commented with why.  A released
version is never edited: a change of schema is a new module, applied at
start by the backend, which records the versions it applied (SQLite in
``PRAGMA user_version``, Cassandra in a ``schema_versions`` table).  Tests:
tests/test_migrations.py.
"""

import importlib
import pkgutil
import re
from dataclasses import dataclass

__all__ = ["Version", "newer_than_known", "versions"]


@dataclass(frozen=True)
class Version:
    number: int
    statements: tuple[str, ...]


def versions(package: str) -> list[Version]:
    """The versions in `package`, in order; there must be some, numbered 1, 2, … without gaps."""
    found = []
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        match = re.fullmatch(r"v(\d{3})", module.name)
        if match:
            statements = importlib.import_module(f"{package}.{module.name}").STATEMENTS
            found.append(Version(int(match.group(1)), tuple(statements)))
    found.sort(key=lambda version: version.number)
    if not found or [version.number for version in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{package}: schema versions must be v001, v002, … without gaps")
    return found


def newer_than_known(where: str, recorded: int, known: list[Version]) -> RuntimeError:
    """The error for a schema written by a newer HiiTrack: never run older code on it."""
    return RuntimeError(
        f"{where} has schema version {recorded}, newer than this HiiTrack knows ({len(known)}): upgrade HiiTrack"
    )
