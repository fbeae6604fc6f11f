"""What the benchmark sends: event names, the funnel's steps, batch messages.

A batch message carries events and two properties, ``plan`` (50 values) and
``country`` (10), fixed per visitor.  Tests: tests/test_bench_smoke.py.
"""

import base64
import json
import random
from urllib.parse import quote

__all__ = ["BATCH_EVENTS", "EVENT_NAMES", "FUNNEL_STEPS", "PLANS", "message_pool"]

EVENT_NAMES = [f"e{i}" for i in range(8)]
FUNNEL_STEPS = EVENT_NAMES[:4]
PLANS = 50
COUNTRIES = 10
BATCH_EVENTS = 5
MESSAGES_PER_PLAN = 16


def message_pool(seed: int, events_per_message: int = BATCH_EVENTS) -> list[list[str]]:
    """URL-encoded batch messages by plan: a visitor always sends its own plan and country."""
    rng = random.Random(seed)
    pool = []
    for plan in range(PLANS):
        messages = []
        for _ in range(MESSAGES_PER_PLAN):
            events = [rng.choice(EVENT_NAMES) for _ in range(events_per_message)]
            message = [events, [["plan", f"p{plan}"], ["country", f"c{plan % COUNTRIES}"]]]
            raw = base64.b64encode(json.dumps(message).encode()).decode()
            messages.append(quote(raw, safe=""))
        pool.append(messages)
    return pool
