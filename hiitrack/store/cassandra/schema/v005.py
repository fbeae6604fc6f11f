"""Cassandra schema version 5: counters written behind a journal (docs/cassandra.md, "Write-behind").

  * journal: each process's commits of increments, answered once written
    here, folded into the counter cells about once a second.
  * journal_writers: how far each process has folded its journal.
  * tallies: the counter cells, one per (cell, writer) holding the writer's
    running total, so that writing it again is harmless.

A counter column cannot be written twice safely (a timeout leaves unknown
whether it was added, and sending it again may add it twice): the old
`counters` table is no longer written.  Its numbers come back with
``hiitrack-admin rebuild`` from the visitors' histories.  Idempotent (IF NOT
EXISTS), as every statement here must be.
"""

STATEMENTS = [
    # Partition key (writer, page) with page = seq // 1024: a process appends
    # to one partition at a time, and a fold deletes a range of one or two
    # partitions (one range tombstone each).  Replay reads the pages after
    # the last fold.  Written once, deleted within seconds: the default
    # compaction keeps the short-lived rows cheap.
    """
    CREATE TABLE IF NOT EXISTS journal (
        writer     text,
        page       bigint,
        seq        bigint,
        increments blob,
        PRIMARY KEY ((writer, page), seq)
    ) WITH comment = 'HiiTrack write-behind journal: one partition per (process, 1024 commits)'
    """,
    # One row per writer: `folded` is the last journal entry whose increments
    # are in the tallies, `folding` the last one of the fold under way (a
    # fold writes it first, so that a replay after a crash knows which
    # tallies may already hold that fold).
    """
    CREATE TABLE IF NOT EXISTS journal_writers (
        writer  text,
        folded  bigint,
        folding bigint,
        PRIMARY KEY ((writer))
    ) WITH comment = 'HiiTrack write-behind journal: how far each process has folded'
    """,
    # Partition key as the counters table of version 1: a report's slice
    # `start <= col < end` of one row is one contiguous read.  Clustered by
    # (col, writer): the cells of a column from every process are adjacent,
    # and a reader sums them.  `n` is the writer's running total for the
    # cell and `through` the last journal entry it includes, so a fold that
    # is sent again, or replayed after a crash, writes the same values.
    # Rewritten about once a second while a cell is hot: leveled compaction,
    # as the counters of version 1.
    """
    CREATE TABLE IF NOT EXISTS tallies (
        scope      text,
        generation uuid,
        row        blob,
        col        blob,
        writer     text,
        n          bigint,
        through    bigint,
        PRIMARY KEY ((scope, generation, row), col, writer)
    ) WITH compaction = {'class': 'LeveledCompactionStrategy'}
      AND comment = 'HiiTrack counter cells: a running total per (scope, generation, row, col, writer)'
    """,
]
