-- HiiTrack's embedded store, schema version 1.
--
-- Two tables hold everything (see hiitrack/store/__init__.py):
--   records   small values addressed by (scope, kind, key): users, buckets,
--             names of events and properties, values, funnels, visitor state;
--   counters  integer cells addressed by (scope, row, col); a report reads a
--             slice of columns of a few rows.
-- Both are WITHOUT ROWID so the primary key is the table's only b-tree: a
-- row slice is one range scan, and deleting a scope is one range delete.

PRAGMA user_version = 1;

CREATE TABLE IF NOT EXISTS records (
    scope TEXT NOT NULL,
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (scope, kind, key)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS counters (
    scope TEXT NOT NULL,
    row   BLOB NOT NULL,
    col   BLOB NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (scope, row, col)
) WITHOUT ROWID;
