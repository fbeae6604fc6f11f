"""MergedWrite: a commit's increments are the sum of its batches', by scope, row and column.

Against a brute-force sum over every cell: rows given in runs (as counting
gives them), interleaved, and as equal but distinct bytes objects, in
several scopes, with amounts of either sign.
"""

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from hiitrack.store.grouping import merge
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
