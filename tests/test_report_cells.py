"""Tests of how a plain report's cells reach their counters (hiitrack.reports._set_cells).

The columns it parses are kept for the next report, up to
`PARSED_COLUMNS` per width; each report is checked against a brute-force
reading of the same cells, with a limit small enough that the kept columns
are dropped again and again.  The reports over HTTP are checked against the
model in tests/test_model.py.
"""

import random

import pytest

from hiitrack import reports
from hiitrack.counting import PATH, TOTAL, UNIQUE_PATH, UNIQUE_TOTAL, VALUE_ID_SIZE
from hiitrack.ids import ID_SIZE, encode_id


def brute_force(cells: dict[bytes, int], width: int, values: list[bytes]) -> dict[bytes, dict[str, object]]:
    """Each value's counters, reading every column from scratch."""
    counts: dict[bytes, dict[str, object]] = {
        value: {"total": 0, "unique_total": 0, "path": {}, "unique_path": {}} for value in values
    }
    for column, n in cells.items():
        value, tag, rest = column[:width], column[width : width + 1], column[width + 1 :]
        if value not in counts:
            continue
        if tag in (PATH, UNIQUE_PATH):
            paths = counts[value]["path" if tag == PATH else "unique_path"]
            assert isinstance(paths, dict)
            paths[encode_id(rest)] = n
        else:
            counts[value]["total" if tag == TOTAL else "unique_total"] = n
    return counts


@pytest.mark.parametrize("width", [0, VALUE_ID_SIZE])
def test_every_cell_reaches_its_counter_however_often_the_parsed_columns_are_dropped(
    monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setattr(reports, "PARSED_COLUMNS", 7)
    monkeypatch.setattr(reports, "_parsed_columns", {})
    rng = random.Random(width)
    values = [rng.randbytes(width) for _ in range(3)] if width else [reports.ALL]
    events = [rng.randbytes(ID_SIZE) for _ in range(4)]
    for _ in range(50):
        cells: dict[bytes, int] = {}
        # Some values the report does not ask for (a value beyond the caps) are skipped.
        for value in [*values, *([rng.randbytes(width)] if width else [])]:
            for tag in (TOTAL, UNIQUE_TOTAL):
                if rng.random() < 0.8:
                    cells[value + tag] = rng.randint(1, 99)
            for tag in (PATH, UNIQUE_PATH):
                for earlier in rng.sample(events, rng.randint(0, len(events))):
                    cells[value + tag + earlier] = rng.randint(1, 99)
        by_value = {value: reports._Counts(series=False) for value in values}
        reports._set_cells(by_value, cells, width)
        assert {value: counts.as_dict() for value, counts in by_value.items()} == brute_force(cells, width, values)
        assert len(reports._parsed_columns[width]) <= 7
