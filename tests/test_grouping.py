"""Group commit: how batches become commits, and what a commit's merge adds up to.

MergedWrite's increments are the sum of its batches', by scope, row and
column, against a brute-force sum over every cell: rows given in runs (as
counting gives them), interleaved, and as equal but distinct bytes objects,
in several scopes, with amounts of either sign.  GroupCommitter's wait for
a commit to fill under load is checked on a fake clock.
"""

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from hiitrack.store.grouping import GroupCommitter, merge
from hiitrack.store.interface import WriteBatch

ROWS = [b"r1", b"r2", b"r3"]
COLUMNS = [b"a", b"b", b"c"]

cells = st.lists(
    st.tuples(st.sampled_from(ROWS), st.booleans(), st.sampled_from(COLUMNS), st.integers(-3, 3)), max_size=20
)
batches = st.lists(st.tuples(st.sampled_from(["s1", "s2"]), cells), max_size=8)


@given(batches)
def test_merged_increments_are_the_sum_of_every_batch_cell(drawn: list) -> None:
    expected: Counter = Counter()
    written = []
    for scope, batch_cells in drawn:
        increments: dict[bytes, dict[bytes, int]] = {}
        for row, distinct, column, amount in batch_cells:
            # An equal row that is another object: merging must go by value.
            columns = increments.setdefault(bytes(bytearray(row)) if distinct else row, {})
            columns[column] = columns.get(column, 0) + amount
            expected[scope, row, column] += amount
        written.append(WriteBatch(scope, increments=increments))
    merged = merge(written)
    found = Counter(
        {(scope, row, column): n for (scope, row), columns in merged.rows.items() for column, n in columns.items()}
    )
    assert +found == +expected and -found == -expected
    assert all(columns for columns in merged.rows.values())


def hit(scope: str) -> WriteBatch:
    return WriteBatch(scope, increments={b"row": {b"column": 1}})


class Commits:
    """A store's commit function whose commits end when the test says; `started` has the scopes
    of each commit's batches."""

    def __init__(self) -> None:
        self.started: list[list[str]] = []
        self._ends: list[Deferred] = []

    def __call__(self, units: list) -> Deferred:
        self.started.append(sorted(batch.scope for unit in units for batch in unit.batches()))
        self._ends.append(Deferred())
        return self._ends[-1]

    def end(self) -> None:
        self._ends[len(self.started) - 1].callback(None)


def test_under_load_a_commit_waits_a_little_to_fill() -> None:
    clock, commits = Clock(), Commits()
    committer = GroupCommitter(commits, reactor=clock, fill=3, fill_wait=0.5)
    first = committer.write(hit("a"))
    clock.advance(0)
    assert commits.started == [["a"]]
    committer.write(hit("b"))
    commits.end()
    assert first.called
    # One batch waits, fewer than 3: the next commit starts `fill_wait` later, with what came meanwhile.
    clock.advance(0.25)
    committer.write(hit("c"))
    assert len(commits.started) == 1
    clock.advance(0.25)
    assert commits.started[1] == ["b", "c"]
    # Three batches waiting when a commit ends: the next starts at once.
    for scope in "def":
        committer.write(hit(scope))
    commits.end()
    assert commits.started[2] == ["d", "e", "f"]


def test_one_request_at_a_time_never_waits_to_fill() -> None:
    clock, commits = Clock(), Commits()
    committer = GroupCommitter(commits, reactor=clock, fill=8, fill_wait=1.0)
    for scope in "abc":
        answered = committer.write(hit(scope))
        clock.advance(0)
        assert commits.started[-1] == [scope]
        commits.end()
        assert answered.called
    assert clock.seconds() == 0


def test_waiting_to_fill_needs_a_reactor() -> None:
    with pytest.raises(ValueError, match="reactor"):
        GroupCommitter(Commits(), fill=8, fill_wait=0.001)
