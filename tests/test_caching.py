"""hiitrack.caching: `LRU` against a brute-force model, `KeyedLock`'s order.

The lock tests drive the work with Deferreds fired by hand, so the order in
which work starts and ends is checked step by step, without the reactor.
"""

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.python.failure import Failure

from hiitrack.caching import LRU, KeyedLock


class ModelLRU:
    """The same contract kept the slow, obvious way: a list from oldest to newest use."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.order: list[tuple[int, int]] = []
        self.hits = 0
        self.misses = 0

    def get(self, key: int) -> int | None:
        for index, (known, value) in enumerate(self.order):
            if known == key:
                self.order.append(self.order.pop(index))
                self.hits += 1
                return value
        self.misses += 1
        return None

    def put(self, key: int, value: int) -> None:
        self.order = [entry for entry in self.order if entry[0] != key] + [(key, value)]
        self.order = self.order[-self.size :]

    def pop(self, key: int) -> None:
        self.order = [entry for entry in self.order if entry[0] != key]

    def forget_where(self, remainder: int) -> None:
        self.order = [entry for entry in self.order if entry[0] % 3 != remainder]


OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["get", "put", "put", "pop", "forget_where"]), st.integers(0, 5), st.integers()),
    min_size=10,
    max_size=60,
)


@given(size=st.integers(1, 4), operations=OPERATIONS)
def test_lru_matches_the_model(size, operations):
    cache: LRU[int, int] = LRU(size)
    model = ModelLRU(size)
    for name, key, value in operations:
        if name == "get":
            assert cache.get(key) == model.get(key)
        elif name == "put":
            cache.put(key, value)
            model.put(key, value)
        elif name == "pop":
            cache.pop(key)
            model.pop(key)
        else:
            cache.forget_where(lambda known, remainder=key % 3: known % 3 == remainder)
            model.forget_where(key % 3)
        assert len(cache) == len(model.order) <= size
        assert (cache.hits, cache.misses) == (model.hits, model.misses)
    assert [cache.get(key) for key, _ in model.order] == [value for _, value in model.order]


def test_lru_forgets_the_least_recently_used_not_the_oldest():
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert (cache.hits, cache.misses) == (3, 1)


def test_lru_put_of_a_known_key_replaces_its_value_without_growing():
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("a", 2)
    assert (len(cache), cache.get("a")) == (1, 2)


class Work:
    """A piece of work that records when it starts and ends and waits for `gate`."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        self.gate: defer.Deferred = defer.Deferred()

    async def __call__(self) -> str:
        self.log.append(f"start {self.name}")
        await self.gate
        self.log.append(f"end {self.name}")
        return self.name


def test_keyed_lock_runs_one_key_in_arrival_order_and_keys_side_by_side():
    lock: KeyedLock[str] = KeyedLock()
    log: list[str] = []
    first, second, third, other = (Work(name, log) for name in ["first", "second", "third", "other"])
    runs = [defer.ensureDeferred(lock.run(key, work)) for key, work in [("v", first), ("v", second), ("v", third)]]
    runs.append(defer.ensureDeferred(lock.run("w", other)))
    assert log == ["start first", "start other"]
    third.gate.callback(None)
    second.gate.callback(None)
    assert log == ["start first", "start other"]
    first.gate.callback(None)
    assert log == ["start first", "start other", "end first", "start second", "end second", "start third", "end third"]
    other.gate.callback(None)
    assert [run.result for run in runs] == ["first", "second", "third", "other"]


def test_keyed_lock_passes_on_the_turn_after_a_failure():
    lock: KeyedLock[str] = KeyedLock()
    log: list[str] = []

    async def failing() -> str:
        log.append("failing")
        raise ValueError("boom")

    blocker, after = Work("blocker", log), Work("after", log)
    first = defer.ensureDeferred(lock.run("v", blocker))
    errors: list[Failure] = []
    defer.ensureDeferred(lock.run("v", failing)).addErrback(errors.append)
    last = defer.ensureDeferred(lock.run("v", after))
    after.gate.callback(None)
    blocker.gate.callback(None)
    assert first.result == "blocker" and last.result == "after"
    assert log == ["start blocker", "end blocker", "failing", "start after", "end after"]
    assert [str(error.value) for error in errors if error.check(ValueError)] == ["boom"]


def test_keyed_lock_lets_a_key_run_at_once_when_its_queue_has_drained():
    lock: KeyedLock[str] = KeyedLock()
    log: list[str] = []
    earlier = Work("earlier", log)
    earlier.gate.callback(None)
    assert defer.ensureDeferred(lock.run("v", earlier)).result == "earlier"
    later = Work("later", log)
    defer.ensureDeferred(lock.run("v", later))
    assert log[-1] == "start later"
