"""The write-behind journal: a commit's increments are durable here before it is answered.

Each process (a *writer*, named in `Settings.writer`) numbers its commits
and appends each commit's increments as one journal entry, a single-row
insert that can be sent again safely.  About once a second the process folds
the entries into the counter cells (counters.py) and then records how far it
folded; entries up to there are deleted.  A process that starts finds the
entries after its last fold and folds them before it serves: a hit answered
200 is counted even if the process was killed before its fold.  A fold first
records which entry it folds up to (`folding`), so that a replay knows which
cells may already hold it.  Tests: tests/test_write_behind.py.
"""

import pickle

from hiitrack.store.cassandra.bridge import ROW_BYTES, Cql, Write
from hiitrack.store.grouping import Rows
from hiitrack.store.interface import in_parts

__all__ = ["ENTRY_CELLS", "Journal", "STATEMENTS"]

JOURNAL = "journal"
PAGE = 1024
"""Entries per journal partition."""
ENTRY_CELLS = 8192
"""Cells of one entry (about 0.5 MB): a larger commit (an import's) is several entries."""

STATEMENTS = {
    "journal add": "INSERT INTO journal (writer, page, seq, increments) VALUES (?, ?, ?, ?)",
    "journal read": "SELECT seq, increments FROM journal WHERE writer = ? AND page = ? AND seq > ?",
    "journal trim": "DELETE FROM journal WHERE writer = ? AND page = ? AND seq <= ?",
    "writer read": "SELECT folded, folding FROM journal_writers WHERE writer = ?",
    "writer folding": "UPDATE journal_writers SET folding = ? WHERE writer = ?",
    "writer folded": "UPDATE journal_writers SET folded = ? WHERE writer = ?",
}


def _loaded(entry: bytes) -> Rows:
    """An entry's rows; entries journaled before rows were grouped hold (scope, row, column) keys."""
    loaded = pickle.loads(entry)
    if not loaded or len(next(iter(loaded))) == 2:
        return loaded
    rows: Rows = {}
    for (scope, row, column), amount in loaded.items():
        rows.setdefault((scope, row), {})[column] = amount
    return rows


class Journal:
    def __init__(self, cql: Cql, writer: str) -> None:
        self._cql = cql
        self.writer = writer
        self.last = 0
        """The last entry number given out."""

    async def open(self) -> tuple[int, int, list[tuple[int, Rows]]]:
        """(folded, folding, the entries after `folded` in order); numbering resumes after them all."""
        row = (await self._cql.execute("writer read", (self.writer,))).one()
        folded = (row.folded or 0) if row else 0
        folding = max(folded, (row.folding or 0) if row else 0)
        entries: list[tuple[int, Rows]] = []
        page = (folded + 1) // PAGE
        while True:
            found = await self._cql.rows("journal read", (self.writer, page, folded))
            if not found:
                break
            entries += [(entry.seq, _loaded(entry.increments)) for entry in found]
            page += 1
        self.last = max([folding, *(seq for seq, _ in entries)])
        return folded, folding, entries

    def number(self, rows: Rows) -> list[tuple[int, Rows]]:
        """The entries of one commit, numbered in order."""
        numbered = []
        for entry in in_parts(rows, ENTRY_CELLS):
            self.last += 1
            numbered.append((self.last, entry))
        return numbered

    def appends(self, entries: list[tuple[int, Rows]]) -> list[Write]:
        """The writes of `entries` (any number of times)."""
        add = self._cql.statement("journal add")
        writes = []
        for seq, rows in entries:
            entry = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
            page = seq // PAGE
            writes.append(
                Write((JOURNAL, self.writer, page), add, (self.writer, page, seq, entry), ROW_BYTES + len(entry))
            )
        return writes

    async def folding(self, upto: int) -> None:
        await self._cql.execute("writer folding", (upto, self.writer))

    async def folded(self, after: int, upto: int) -> None:
        """Entries up to `upto` are in the cells: record it, then delete them."""
        await self._cql.execute("writer folded", (upto, self.writer))
        trim = self._cql.statement("journal trim")
        pages = range((after + 1) // PAGE, upto // PAGE + 1)
        await self._cql.each((trim, (self.writer, page, upto)) for page in pages)
