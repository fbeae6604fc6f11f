"""One visitor's data as the visitor history route answers it (GDPR Art. 15).

Its events oldest first, a page at a time, with its property values by name
and the times of its first and last hits.  A cursor names the last event a
page gave: ``SEQUENCE.INDEX``, the hit's sequence and the event's place in
it.  Tests: tests/test_history.py.
"""

from hiitrack.catalog import Catalog
from hiitrack.counting import Visitor
from hiitrack.errors import BadRequest
from hiitrack.gathering import together
from hiitrack.history import Hit, hit_key, hits_kind
from hiitrack.ids import ID_SIZE
from hiitrack.store.interface import RecordStore
from hiitrack.store.kinds import VISITOR

__all__ = ["export", "parse_cursor"]


def seconds(time_ms: int) -> int | float:
    """A time in ms as Unix seconds: whole seconds as an integer."""
    return time_ms // 1000 if time_ms % 1000 == 0 else time_ms / 1000


def parse_cursor(text: str | None) -> tuple[int, int]:
    """(hit sequence, event index) of the last event already given; (0, -1) for the start."""
    if text is None:
        return 0, -1
    sequence, dot, index = text.partition(".")
    if not (dot and sequence.isascii() and sequence.isdigit() and index.isascii() and index.isdigit()):
        raise BadRequest("after must be a cursor from a previous answer's next")
    if len(sequence) > 12 or len(index) > 6:
        raise BadRequest("after must be a cursor from a previous answer's next")
    return int(sequence), int(index)


async def export(
    store: RecordStore, catalog: Catalog, scope: str, visitor_id: str, after: str | None, limit: int
) -> dict | None:
    """The visitor's page of `limit` events after cursor `after`; None for a visitor the bucket never saw."""
    raw = await store.get(scope, VISITOR, visitor_id)
    if raw is None:
        return None
    visitor = Visitor.from_bytes(raw)
    sequence, index = parse_cursor(after)
    events: list[list] = []
    last_given = (sequence, index)
    next_cursor = None
    start = hit_key(max(sequence - 1, 0)) if sequence else ""
    while next_cursor is None:
        page = await store.page(scope, hits_kind(visitor_id), start, limit)
        for key, value in page:
            hit = Hit.from_bytes(value)
            for place, name in enumerate(hit.events):
                if int(key) == sequence and place <= index:
                    continue
                if len(events) == limit:
                    next_cursor = f"{last_given[0]}.{last_given[1]}"
                    break
                events.append([seconds(hit.time_ms), name])
                last_given = (int(key), place)
            if next_cursor is not None:
                break
        if len(page) < limit:
            break
        start = page[-1][0]
    return {
        "visitor_id": visitor_id,
        "first_seen": seconds(visitor.first_ms) if visitor.hits else None,
        "last_seen": seconds(visitor.last_ms) if visitor.hits else None,
        "properties": await _properties(catalog, scope, visitor),
        "events": events,
        "next": next_cursor,
        "hits": visitor.hits,
    }


async def _properties(catalog: Catalog, scope: str, visitor: Visitor) -> dict[str, list]:
    names = catalog.names(scope)
    values = sorted(visitor.values)
    held = sorted({value[:ID_SIZE] for value in values})
    found = await together(*(together(names.property_name(prop), names.values(prop)) for prop in held))
    return {name: [known[value] for value in values if value in known] for name, known in found if name is not None}
