"""What a bucket has seen: event and property names, values, saved funnels.

Names and values are written once, in the same batch as the counters of the
request that first used them; a bounded per-bucket cache of the ids already
written keeps that off every later request.  Reports read names back from
here.  Tests: tests/test_http_reports.py.
"""

import ujson

from hiitrack.caching import LRU
from hiitrack.ids import canonical_json, decode_id, encode_id
from hiitrack.store import WriteBatch
from hiitrack.store.interface import RecordWriter
from hiitrack.store.kinds import EVENT, FUNNEL, PROPERTY, VALUE, Kind

__all__ = ["Catalog"]


def _value_kind(prop: bytes) -> Kind:
    return VALUE.of(encode_id(prop))


class Catalog:
    def __init__(self, store: RecordWriter, cache_size: int = 1024) -> None:
        self._store = store
        self._written: LRU[str, set[bytes]] = LRU(cache_size)

    def caches(self) -> dict[str, LRU]:
        return {"catalog": self._written}

    def new_records(
        self, scope: str, events: dict[bytes, str], values: dict[bytes, tuple[str, object]]
    ) -> dict[tuple[Kind, str], bytes]:
        """The name and value records of a request that are not written yet.

        `events` maps event ids to names; `values` maps value ids to
        ``(property name, value)``.
        """
        written = self._written.get(scope) or set()
        records: dict[tuple[Kind, str], bytes] = {}
        for event, name in events.items():
            if event not in written:
                records[EVENT, encode_id(event)] = name.encode("utf-8")
        for value, (name, content) in values.items():
            if value not in written:
                prop = value[:16]
                records[PROPERTY, encode_id(prop)] = name.encode("utf-8")
                records[_value_kind(prop), encode_id(value)] = canonical_json(content).encode("utf-8")
        return records

    def remember(self, scope: str, ids: set[bytes]) -> None:
        """Note ids whose records are durable, so they are not written again."""
        written = self._written.get(scope)
        if written is None:
            written = set()
            self._written.put(scope, written)
        written |= ids

    def forget(self, scope: str) -> None:
        self._written.pop(scope)

    async def events(self, scope: str) -> dict[bytes, str]:
        return _decoded_names(await self._store.scan(scope, EVENT))

    async def properties(self, scope: str) -> dict[bytes, str]:
        return _decoded_names(await self._store.scan(scope, PROPERTY))

    async def event_name(self, scope: str, event: bytes) -> str | None:
        raw = await self._store.get(scope, EVENT, encode_id(event))
        return None if raw is None else raw.decode("utf-8")

    async def property_name(self, scope: str, prop: bytes) -> str | None:
        raw = await self._store.get(scope, PROPERTY, encode_id(prop))
        return None if raw is None else raw.decode("utf-8")

    async def values(self, scope: str, prop: bytes) -> dict[bytes, object]:
        records = await self._store.scan(scope, _value_kind(prop))
        return {decode_id(key, 32): ujson.loads(raw) for key, raw in records.items()}

    async def funnels(self, scope: str) -> dict[str, dict]:
        return {name: ujson.loads(raw) for name, raw in (await self._store.scan(scope, FUNNEL)).items()}

    async def funnel(self, scope: str, name: str) -> dict | None:
        raw = await self._store.get(scope, FUNNEL, name)
        return None if raw is None else ujson.loads(raw)

    async def save_funnel(self, scope: str, name: str, funnel: dict) -> None:
        await self._store.write(WriteBatch(scope, records={(FUNNEL, name): ujson.dumps(funnel).encode()}))

    async def delete_funnel(self, scope: str, name: str) -> None:
        await self._store.delete(scope, FUNNEL, name)


def _decoded_names(records: dict[str, bytes]) -> dict[bytes, str]:
    return {decode_id(key): raw.decode("utf-8") for key, raw in records.items()}
