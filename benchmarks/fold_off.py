"""No fold of the journal while measuring: ``twistd hiitrack`` whose write-behind loop waits an hour.

Imported before twistd runs (``benchmarks.light_load --fold-off``).  Every
hit is still journaled and counted: reads add the unfolded layers, and the
stop folds them.  The latency without it is what the fold adds to the tail.
Never for anything but measuring.
"""

from hiitrack.store import write_behind

write_behind.FOLD_SECONDS = 3600.0
