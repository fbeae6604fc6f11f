"""The benchmark's template files and how they are filled.

``load.lua.tmpl`` (wrk's script) and ``nginx.conf.tmpl`` (the scale-out
proxy) sit beside this module.  Their placeholders are ``@{name}``: neither
Lua nor nginx uses ``@``, so their own ``%`` and ``$`` stay as written.
Tests: tests/test_bench_smoke.py.
"""

import string
from pathlib import Path

__all__ = ["render"]

HERE = Path(__file__).resolve().parent


class _AtTemplate(string.Template):
    delimiter = "@"


def render(name: str, **values: object) -> str:
    """The template file `name` with every placeholder filled (a missing value raises KeyError)."""
    return _AtTemplate((HERE / name).read_text()).substitute({key: str(value) for key, value in values.items()})
