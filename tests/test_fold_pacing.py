"""The fold loop's pace: a fold every tick while folds are short, fewer while they take long.

Folds here run against a fake clock: each takes the time the test gives it,
and the ticks at which the loop folds are checked against the rule written
out plainly: the next fold is at the first tick at least ``took /
FOLD_SHARE`` after the last one began (but FOLD_SECONDS_MAX at most), and
after it ended.
"""

import pytest
import pytest_twisted
from twisted.internet.task import Clock

from hiitrack.store.write_behind import (
    FOLD_SECONDS,
    FOLD_SECONDS_MAX,
    FOLD_SHARE,
    Unfolded,
    WriteBehind,
    fold_gap,
)

ROW = ("u/b", b"row")


def next_fold_after(took: float) -> float:
    """Seconds from a fold's start to the next fold's, by the rule, on a loop ticking every FOLD_SECONDS."""
    wanted = min(took / FOLD_SHARE, FOLD_SECONDS_MAX)
    tick = FOLD_SECONDS
    while tick < wanted - 1e-9:
        tick += FOLD_SECONDS
    return tick


@pytest.mark.parametrize("took", [0.0, 0.05, 0.1, 0.1001, 0.25, 0.3, 0.45, 0.5, 0.51, 3.0, 60.0])
def test_the_gap_keeps_folds_to_their_share_and_within_the_longest_gap(took):
    assert fold_gap(took) == pytest.approx(next_fold_after(took))


def test_the_longest_gap_is_whole_ticks_and_above_the_light_load_period():
    assert FOLD_SECONDS_MAX > FOLD_SECONDS
    assert FOLD_SECONDS_MAX / FOLD_SECONDS == round(FOLD_SECONDS_MAX / FOLD_SECONDS)


@pytest_twisted.ensureDeferred
async def test_the_loop_folds_at_the_ticks_the_rule_gives_and_loses_no_increment():
    clock = Clock()
    # 8.6 s: a fold longer than the longest gap, whose ticks the loop misses.
    durations = [0.02, 0.3, 0.05, 0.7, 0.15, 0.0, 8.6, 0.01, 0.01]
    folded_at: list[float] = []
    folded = 0

    async def fold_layer(layer: Unfolded) -> int:
        nonlocal folded
        folded_at.append(clock.seconds())
        folded += layer.rows[ROW][b"c"]
        clock.advance(durations[len(folded_at) - 1])
        return 1

    behind = WriteBehind(clock, fold_layer, "test")
    behind.loop.clock = clock
    behind.start()
    seq = added = 0
    try:
        while len(folded_at) < len(durations):
            seq += 1
            behind.add(seq, {ROW: {b"c": seq}})
            added += seq
            # Steps that the folds' durations are whole numbers of: a tick is run when it is due.
            clock.advance(0.01)
    finally:
        behind.stop()
    await behind.fold()
    assert folded == added
    expected = [FOLD_SECONDS]
    for took in durations[:-1]:
        # The first tick the gap allows, and after the fold ended.
        at = expected[-1] + next_fold_after(took)
        while at <= expected[-1] + took:
            at += FOLD_SECONDS
        expected.append(at)
    # Within a step of the clock: a tick is a whole second from the next.
    assert folded_at == pytest.approx(expected, abs=0.011)
