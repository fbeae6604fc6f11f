"""HiiTrack's hot path compiled to C extensions by mypyc, where this machine can.

pyproject.toml declares the package; this adds the modules of `NATIVE`,
compiled from their own typed source (mypyc: the same code without the
interpreter's dispatch): a hit's counting takes a quarter to a third less
CPU, and the server 9 to 17 % less a request (docs/performance.md,
"Session 44"), a few % less again with the tracker and the exact funnels
compiled too ("Session 45").  Without mypyc or a C compiler, or with
HIITRACK_PURE=1, nothing is compiled and the package runs as the
pure Python it is, the same in everything but speed.
"""

import functools
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = [
    "hiitrack/caching.py",
    "hiitrack/conversions.py",
    "hiitrack/counting.py",
    "hiitrack/funnels.py",
    "hiitrack/store/grouping.py",
    "hiitrack/store/interface.py",
    "hiitrack/store/write_behind.py",
    "hiitrack/tracking.py",
]
"""A hit's way through the tracker, its counting and the exact funnels' (conversions, funnels), its
merges into the commit and the fold, and the caches and locks every hit takes.  Not the modules
whose objects the tests reach into (a compiled class's methods cannot be replaced on an instance)
or that an uncompiled class extends (docs/performance.md, "Session 45")."""
GROUP = "hiitrack_native"
"""The one shared library the compiled modules load (`GROUP`__mypyc): built together or not at all."""


@functools.cache
def _compiled() -> list[Extension]:
    """mypyc's extensions of `NATIVE`, their C written: once a process, however often the build's
    commands set build_ext up."""
    from mypyc.build import mypycify

    return mypycify(NATIVE, group_name=GROUP)


def _pure(error: BaseException) -> None:
    print(f"hiitrack: the hot path stays pure Python ({error!r})", file=sys.stderr)


class BuildNativeOrPure(build_ext):
    """Compiles `NATIVE` when the build runs (not each time pip reads the metadata); if that
    fails, removes whatever it built, and the package is pure Python.  Either way, the compiled
    modules where the build puts them are this build's and no others."""

    def finalize_options(self) -> None:
        self.distribution.ext_modules = []
        if os.environ.get("HIITRACK_PURE") != "1":
            try:
                self.distribution.ext_modules = _compiled()
            except (Exception, SystemExit) as error:  # no mypyc, or its type check failed
                _pure(error)
        super().finalize_options()

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # no C compiler, no Python headers
            _pure(error)
            self.extensions = []
        self._remove_others()

    def _remove_others(self) -> None:
        """Removes the compiled modules that this build did not make from where it puts its own: a
        module compiled by an earlier build (with another `NATIVE`, or before HIITRACK_PURE=1) would
        be imported before its source, or shipped in the wheel from build/."""
        made = {self.get_ext_filename(extension.name) for extension in self.extensions}
        roots = [Path(self.build_lib)]
        if self.inplace or getattr(self, "editable_mode", False):
            roots.append(Path(__file__).parent)
        for root in roots:
            for suffix in EXTENSION_SUFFIXES:
                for found in [*root.glob(f"hiitrack/**/*{suffix}"), *root.glob(f"{GROUP}__mypyc*{suffix}")]:
                    if str(found.relative_to(root)) not in made:
                        found.unlink(missing_ok=True)


# A stand-in that BuildNativeOrPure replaces: it makes the wheel one of this platform's, and has
# the build run build_ext.
setup(ext_modules=[Extension("hiitrack._native", sources=[])], cmdclass={"build_ext": BuildNativeOrPure})
