"""SQLite schema version 5: a number that moves with every change to `counters`.

Every transaction that changes `counters` (a commit of a process that does
not journal, a fold, a drop) adds 1 to `journal_folded.changes`.  A process
keeps the counter rows it read, each with the number of the snapshot it was
read in (hiitrack.store.sqlite.cells_cache), and reads a row again only
once the number has moved: no other process's write can then go unseen.
"""

STATEMENTS = [
    "ALTER TABLE journal_folded ADD COLUMN changes INTEGER NOT NULL DEFAULT 0",
]
