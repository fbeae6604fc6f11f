"""The caps on what one hit, one visitor and one bucket may hold, and the report size bound.

Every counter cell, visitor state and name costs storage and time forever,
and the tracking routes are open to anyone, so each is capped.  Counting
decides whether a hit stays under the hit and visitor caps
(hiitrack.counting); the catalog decides for the bucket's names
(hiitrack.catalog); the write path refuses the whole hit before writing
anything.  The defaults are far above what a real site reaches (see
docs/api.md, "Caps"); ``twistd hiitrack --limits NAME=N,...`` changes them.
Tests: tests/test_caps.py.
"""

from dataclasses import dataclass, fields, replace

from hiitrack.errors import ApiError

__all__ = ["Limits", "OverLimit"]


@dataclass(frozen=True)
class Limits:
    hit_cells: int = 64_000
    """Distinct counter cells one hit may add to: bounds one request's write and reactor time.

    One more event of a visitor at both visitor caps adds to at most
    (3 + 3 × 100) × (2 + 2 × 99) + 100 + 1 = 60,701 cells (the holders row's 100,
    the names row's 1), so such a visitor can still send events one at a time."""
    visitor_events: int = 100
    """Distinct events of one visitor: its state grows with the square of this (≤ 63 KB at 100)."""
    visitor_values: int = 100
    """Distinct property values of one visitor (a batch may carry 100): each multiplies the cells of every event."""
    visitor_hits: int = 100_000
    """Hits kept in one visitor's history (a few MB): past it a hit is refused, so no history partition is unbounded."""
    user_buckets: int = 1_000
    """Buckets of one user: the open tracking routes can create them (docs/api.md, "First-hit buckets")."""
    bucket_events: int = 10_000
    """Distinct event names of a bucket (Amplitude allows 2,000 event types per project)."""
    bucket_properties: int = 1_000
    """Distinct property names of a bucket."""
    property_values: int = 10_000
    """Distinct values of one property in a bucket."""
    bucket_funnels: int = 100
    """Saved funnels of a bucket (docs/api.md names 100)."""
    report_values: int = 2_000
    """Values a report may split by (a 4-step funnel over 2,000 values is about 1 MB); more: refused."""

    @classmethod
    def parse(cls, text: str) -> "Limits":
        """``hit-cells=50000,visitor-events=100``: the named caps changed, the rest default."""
        known = {field.name.replace("_", "-"): field.name for field in fields(cls)}
        changes: dict[str, int] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, number = item.partition("=")
            if name not in known or not number.isdigit() or int(number) < 1:
                raise ValueError(f"bad limit {item!r}: use NAME=N (N >= 1) with NAME one of {', '.join(known)}")
            changes[known[name]] = int(number)
        return replace(cls(), **changes)


class OverLimit(ApiError):
    """A hit or a funnel that would take a visitor, a bucket or a hit over a cap.

    422: the request is well formed, but what it would add is refused (the
    contract fixes 400 for a funnel past the bucket's cap: `status` says so).
    The answer names the cap (``limit``, as in ``--limits``) and its value
    (``max``).
    """

    status = 422

    def __init__(self, limit: str, maximum: int, what: str, status: int | None = None) -> None:
        name = limit.replace("_", "-")
        super().__init__(f"{what}: the cap {name} is {maximum}", limit=name, max=maximum)
        if status is not None:
            self.status = status
