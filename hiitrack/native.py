"""Whether the hot path runs as the C extensions that setup.py compiles with mypyc.

They are all built or none (they load one shared library).  In a checkout they
are built in place (scripts/test, scripts/bench), and Python imports a
module's extension before its source: `stale` names those whose source was
edited since, which would otherwise run the old code.
"""

from pathlib import Path

import hiitrack

__all__ = ["build", "compiled", "stale", "stale_refusal"]

_PACKAGE = Path(hiitrack.__file__).parent


def compiled() -> bool:
    from hiitrack import counting

    return not counting.__file__.endswith(".py")


def build() -> str:
    """How the hot path runs, for the server's log and the benchmark's report."""
    return "compiled by mypyc" if compiled() else "pure Python"


def stale() -> list[str]:
    """The sources (relative to the package) newer than their compiled module."""
    older = []
    for extension in _PACKAGE.rglob("*.so"):
        source = extension.with_name(extension.name.split(".", 1)[0] + ".py")
        if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
            older.append(str(source.relative_to(_PACKAGE)))
    return sorted(older)


def stale_refusal() -> str | None:
    """Why a run of the checkout (the suite, the benchmark) must not start, or None: a compiled
    module older than its source would run the code before the edit."""
    older = stale()
    if not older:
        return None
    return (
        f"compiled modules older than their source: {', '.join(older)}; rebuild them"
        " (`python setup.py build_ext --inplace --force`, as scripts/test and scripts/bench do)"
    )
