"""SQLite schema version 4: the write-behind journal (hiitrack.store.sqlite.store).

A commit of the process that journals writes its increments as one journal
row instead of adding them to `counters` cell by cell; about once a second
a fold adds the rows' sums to `counters`, deletes them and moves
`journal_folded` on, all in one transaction.
"""

STATEMENTS = [
    # One row per commit: its increments as a pickled {(scope, row): {column: amount}}.
    "CREATE TABLE journal (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL)",
    # The last journal entry whose increments are in `counters`: one row.  A
    # read takes it in the same snapshot as the cells, to know which of the
    # process's unfolded increments those cells lack.
    "CREATE TABLE journal_folded (id INTEGER PRIMARY KEY CHECK (id = 0), upto INTEGER NOT NULL)",
    "INSERT INTO journal_folded (id, upto) VALUES (0, 0)",
]
