"""`pip install .` and `pip install -e .` both give a working `twistd -n hiitrack`.

Each install goes into a fresh venv that sees this machine's packages
(`--system-site-packages`, so nothing is downloaded) and is built from a copy
of the checkout without build isolation.  The commands then run from a folder
outside the copy, without PYTHONPATH, so only the installed package can
answer.  A `hiitrack` installed into the system's own site-packages (as
scripts/test does) must not be what answers: each check asserts where the
package and twistd's plugin were found, and whether the hot path was
compiled (setup.py: mypy is in the test extra, and this machine has a C
compiler) or, with HIITRACK_PURE=1, left pure Python.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GENERATED = shutil.ignore_patterns(
    ".git",
    "node_modules",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "dropin.cache",
    "*.db*",
    "twistd.*",
    "*.so",
)
# Twisted lives in the system's site-packages, so its `twistd` script runs the
# system's interpreter; the venv's interpreter runs twistd's entry point.
TWISTD = ["-c", "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"]
WHERE = """
import os, hiitrack, hiitrack.native, twisted.plugins
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
print(os.path.dirname(hiitrack.__file__))
print(*[p for p in twisted.plugins.__path__ if os.path.exists(os.path.join(p, "hiitrack_plugin.py"))], sep=os.pathsep)
print(*sorted(maker.tapname for maker in getPlugins(IServiceMaker)), sep=" ")
print(hiitrack.native.compiled())
"""


def _run(*command: str | Path, cwd: Path) -> str:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout


def _install(tmp_path: Path, *pip_arguments: str, leftovers: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A venv with a copy of the checkout installed by pip; its bin folder and the copy, in which
    empty files stand at `leftovers` (relative paths) as if an earlier build had left them."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=GENERATED)
    for leftover in leftovers:
        (checkout / leftover).parent.mkdir(parents=True, exist_ok=True)
        (checkout / leftover).touch()
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv, cwd=tmp_path)
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        venv / "bin" / "python",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        *pip_arguments,
        checkout,
        cwd=tmp_path,
    )
    return venv / "bin", checkout


def _package_files(folder: Path) -> set[str]:
    """The package's files but bytecode and the compiled modules (setup.py)."""
    return {
        str(file.relative_to(folder))
        for file in folder.rglob("*")
        if file.is_file() and "__pycache__" not in file.parts and file.suffix not in (".pyc", ".so")
    }


@pytest.mark.timeout(300)
@pytest.mark.parametrize("editable", [False, True], ids=["pip-install", "pip-install-editable"])
def test_install_gives_twistd_hiitrack(tmp_path: Path, editable: bool) -> None:
    bin_folder, checkout = _install(tmp_path, *(["--editable"] if editable else []))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    package, plugin_folders, tapnames, compiled = _run(bin_folder / "python", "-c", WHERE, cwd=outside).splitlines()
    installed = checkout if editable else bin_folder.parent
    assert Path(package).is_relative_to(installed), package
    assert any(Path(folder).is_relative_to(installed) for folder in plugin_folders.split(os.pathsep)), plugin_folders
    assert "hiitrack" in tapnames.split(), tapnames
    assert _package_files(Path(package)) == _package_files(checkout / "hiitrack"), "package data left out"
    # mypy (the test extra) and a C compiler are here: the hot path is compiled (setup.py).
    assert compiled == "True", "the hot path was installed as pure Python"
    usage = _run(bin_folder / "python", *TWISTD, "-n", "hiitrack", "--help", cwd=outside)
    assert "twistd [options] hiitrack" in usage and "--store=" in usage, usage


@pytest.mark.timeout(300)
def test_hiitrack_pure_installs_the_hot_path_uncompiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also when an earlier build left compiled modules, in build/ (which the wheel is made from)
    or in place (which Python imports before the source)."""
    monkeypatch.setenv("HIITRACK_PURE", "1")
    build_lib = f"build/lib.{sysconfig.get_platform()}-{sys.implementation.cache_tag}"
    module = f"hiitrack/counting{EXTENSION_SUFFIXES[0]}"
    in_place = [module, f"hiitrack_native__mypyc{EXTENSION_SUFFIXES[0]}"]
    bin_folder, checkout = _install(tmp_path, leftovers=(f"{build_lib}/{module}", *in_place))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    package, _, tapnames, compiled = _run(bin_folder / "python", "-c", WHERE, cwd=outside).splitlines()
    assert compiled == "False" and not list(Path(package).rglob("*.so"))
    assert "hiitrack" in tapnames.split(), tapnames
    # The wheel was made from the folder the leftover stood in, and the leftover is gone from it.
    assert (checkout / build_lib / "hiitrack" / "counting.py").exists()
    assert not (checkout / build_lib / module).exists()
    # A wheel's build leaves the checkout's own files; a build in place makes them this build's.
    assert all((checkout / leftover).exists() for leftover in in_place)
    _run(bin_folder / "python", "setup.py", "--quiet", "build_ext", "--inplace", cwd=checkout)
    assert not any((checkout / leftover).exists() for leftover in in_place)
