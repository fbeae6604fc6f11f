"""Every test file that the code, the scripts or the documents name exists.

Module docstrings name the tests that hold them, README.md's guarantees name
the tests that check them: a renamed or never-written test file would leave
a promise pointing nowhere.  Scans every text file of the checkout (not the
generated folders) for paths under the tests folder.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {".git", "node_modules", "__pycache__", "build", "dist", ".hypothesis"}
TEST_FILE = re.compile(r"\btests/[\w/]+\.py\b")


def _text_files() -> list[Path]:
    files = []
    for file in sorted(ROOT.rglob("*")):
        parts = set(file.relative_to(ROOT).parts)
        if file.is_file() and not parts & SKIPPED and not any(part.endswith("_cache") for part in parts):
            files.append(file)
    return files


def _named_test_files(file: Path) -> set[str]:
    try:
        return set(TEST_FILE.findall(file.read_text(encoding="utf-8")))
    except UnicodeDecodeError:
        return set()


def test_every_named_test_file_exists():
    named = {(str(file.relative_to(ROOT)), test) for file in _text_files() for test in _named_test_files(file)}
    assert any(source.startswith("hiitrack/") for source, _ in named), "the scan found no module naming its tests"
    missing = sorted((source, test) for source, test in named if not (ROOT / test).is_file())
    assert missing == [], "files that name test files which do not exist: " + ", ".join(
        f"{source} names {test}" for source, test in missing
    )
