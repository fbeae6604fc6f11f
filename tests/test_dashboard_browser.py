"""The dashboard in a real browser: Debian's Chromium, driven by playwright-core.

A bucket is fed through the API; tests/browser/dashboard.js opens the
dashboard as the owner (light, dark, phone width) and as an access-key
reader, and reports what each view showed.  The numbers must be the API's;
the funnel made with the form must be the one the API makes from the same
definition; the reader gets no write control and its forged write is
refused; nothing logs an error, nothing leaves the server's origin, and the
first load stays under 200 KB.  The run saves the screenshots of
docs/screenshots/.  Needs `tests/browser/setup.sh` to have run: without
Chromium or node_modules this fails, it never skips.
"""

import json
import random
import time

import pytest_twisted

from tests.chromium import ROOT, run_driver
from tests.helpers import PASSWORD, auth_of, batch, eid, new_bucket, new_user, path

SCREENSHOTS = ROOT / "docs" / "screenshots"
DRIVE_TIMEOUT = 160
FIRST_LOAD_LIMIT = 200_000
DAY = 86400

HOME, DOCS, SIGNUP, PAID, LIVE = "Viewed home", "Opened docs", "Signed up", "Paid ✓", "Live ping"
DAYS_BACK = 20


def visits() -> list[tuple[str, float, list, list]]:
    """Sixty visitors over the last 20 days: (visitor, days ago, events, properties)."""
    draw = random.Random(20261130)
    found = [("v-seats", 0.0, [DOCS], [["plan", {"seats": 5}]]), ("v-twice", 1.5, [HOME, HOME], [])]
    for number in range(60):
        events = [DOCS] if draw.random() < 0.3 else []
        events.append(HOME)
        if draw.random() < 0.6:
            events.append(SIGNUP)
            if draw.random() < 0.5:
                events += [PAID, HOME]
        plan = draw.choice([[["plan", "free"]], [["plan", "pro"]], []])
        found.append((f"v{number}", draw.uniform(0, DAYS_BACK), events, plan))
    return found


BOUNDS = [1, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400, 172800, 345600, 604800, 1209600]
BOUNDS += [2592000, 7776000, 31622400]
NEW_FUNNEL = {
    "name": "signup → pay",
    "description": "made with the form",
    "steps": [DOCS, SIGNUP, PAID],
    "property": "plan",
}


def exact_stub(report: dict) -> dict:
    """The saved funnel's report with a `conversion` object shaped as Part 2 of the API contract defines it."""
    value_ids = {str(value): value_id for value_id, value in report["property"]["values"].items()}
    pro, free = value_ids["pro"], value_ids["free"]
    histogram = {bound: 0 for bound in BOUNDS}
    return {
        **report,
        "conversion": {
            "order": "sequential",
            "window": 7 * 86400,
            "steps": [[eid(HOME)], [eid(SIGNUP), eid(DOCS)], [eid(PAID)]],
            "exclude": [eid(LIVE)],
            "visitors": [1200, 600, 150],
            "time_to_convert": [
                None,
                {"buckets": list({**histogram, 60: 100, 300: 400, 600: 100}.items()), "median": 300},
                {"buckets": list({**histogram, 86400: 150}.items()), "median": 86400},
            ],
            "by_value": {pro: [700, 500, 140], free: [500, 100, 10]},
            "days": [[1764374400, [800, 400, 100]], [1764460800, [400, 200, 50]]],
            "backfill": {"state": "running", "visitors": 1234},
        },
    }


VISITOR = {
    "visitor_id": "visitor/b",
    "first_seen": 1764460800.5,
    "last_seen": 1764464400,
    "properties": {"plan": ["pro", {"seats": 5}]},
    "events": [[1764460800.5, HOME], [1764464400, PAID]],
    "next": None,
}


def number(text: str) -> int:
    return int(text.replace(",", ""))


def shown_value(value: object) -> str:
    """A property value as the page writes it (JSON.stringify)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def counts_by(rows: list[dict], key: str) -> dict:
    """A view's rows as {row's data[key]: (its first two numbers)}."""
    return {row["data"][key]: (number(row["cells"][1]), number(row["cells"][2])) for row in rows}


def share(part: int, whole: int) -> str:
    """A share as the page writes it (Intl percent, one decimal at most)."""
    return f"{round(100 * part / whole, 1):g}%" if whole else "–"


@pytest_twisted.ensureDeferred
async def test_the_dashboard_shows_the_apis_numbers(server, user_name, tmp_path):
    client = server.client
    auth = auth_of(user_name)
    await new_user(client, user_name)
    # Hits spread over past days (the server's clock set back for each),
    # then the real clock again for the browser.  The funnel is saved before
    # the hits, so its exact report is kept live from the first one.
    now = time.time()
    server.clock.now = now - (DAYS_BACK + 1) * DAY
    await new_bucket(client, user_name, "shop")
    checkout = {"description": "home to paid", "event": [HOME, SIGNUP, PAID], "property": "plan"}
    created = await client.post(path(user_name, "shop", "funnel", "checkout"), checkout, auth=auth)
    assert created.status == 201, created.body
    for visitor, days_ago, events, properties in visits():
        server.clock.now = now - days_ago * DAY
        await batch(client, user_name, "shop", visitor, events, properties)
    server.clock.now = None
    key = (await client.get(path(user_name, "shop"), auth=auth)).json["access_key"]
    stub = exact_stub((await client.get(path(user_name, "shop", "funnel", "checkout"), auth=auth)).json)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    seen = await run_driver(
        "dashboard.js",
        {
            "url": server.url + path(user_name, "shop", "dashboard"),
            "user": user_name,
            "password": PASSWORD,
            "accessKey": key,
            "event": SIGNUP,
            "property": "plan",
            "funnel": "checkout",
            "newFunnel": NEW_FUNNEL,
            "liveEvent": LIVE,
            "screenshots": str(SCREENSHOTS),
            "scratch": str(tmp_path),
            "exactStub": {"report": stub, "dropped": ["visitor a", "visitor/b"], "visitor": VISITOR},
        },
        DRIVE_TIMEOUT,
    )

    async def api(*segments: str, **params: object) -> dict:
        answer = await client.get(path(user_name, "shop", *segments), params or None, auth=auth)
        assert answer.status == 200, answer.body
        return answer.json

    bucket = await api()
    names = {record["id"]: name for name, record in bucket["events"].items()}

    # Overview: every event with the API's totals and its last 30 days.
    overview = seen["views"]["overview"]
    shown = {row["data"]["event"]: row["cells"] for row in overview["events"]}
    assert set(shown) == {HOME, DOCS, SIGNUP, PAID}
    for name, (_, total, unique, _) in shown.items():
        report = await api("event", name)
        assert (number(total), number(unique)) == (report["total"], report["unique_total"]), name
    today = int(time.time()) // DAY * DAY
    for row, days in zip(overview["events"], overview["sparks"], strict=True):
        series = await api("event", row["data"]["event"], start=today - 29 * DAY, interval="day")
        per_day = dict(series["total"])
        assert days == [per_day.get(today - back * DAY, 0) for back in range(29, -1, -1)], row
    conversion = (await api("funnel", "checkout"))["conversion"]
    assert conversion["backfill"]["state"] == "done"
    steps = conversion["visitors"]
    assert [row["cells"] for row in overview["funnels"]] == [
        ["checkout", "3", str(steps[0]), str(steps[-1]), share(steps[-1], steps[0])]
    ]
    plan = await api("property", "plan")
    assert [row["cells"] for row in overview["properties"]] == [["plan", str(len(plan["values"]))]]
    assert overview["writeControls"] == 1  # "New funnel"

    # An event page: totals, what came before it, the split by plan, the series.
    event = seen["views"]["event"]
    report = await api("event", SIGNUP)
    assert event["title"] == SIGNUP
    assert (number(event["total"]), number(event["unique"])) == (report["total"], report["unique_total"])
    assert counts_by(event["before"], "before") == {
        names[i]: (n, report["path"][i]) for i, n in report["unique_path"].items() if n
    }
    by_plan = await api("event", SIGNUP, property="plan")
    assert counts_by(event["split"], "value") == {
        shown_value(by_plan["values"][i]): (n, by_plan["unique_totals"][i]) for i, n in by_plan["totals"].items()
    }
    assert len(event["series"]) == 31 and sum(number(row["cells"][1]) for row in event["series"]) == report["total"]
    assert event["charts"] >= 1

    # The funnel page: the steps are the API's exact visitors, split by plan too.
    funnel = await api("funnel", "checkout")
    assert [number(row["cells"][1]) for row in seen["views"]["funnel"]["steps"]] == steps
    assert counts_by(seen["views"]["funnel"]["values"], "value") == {
        shown_value(funnel["property"]["values"][i]): (counts[0], counts[-1])
        for i, counts in funnel["conversion"]["by_value"].items()
    }
    assert seen["views"]["funnel"]["writeControls"] == 1  # Edit and Delete

    # The exact report, from the stub: exact steps, histograms with their
    # medians, entry days, values, backfill progress, who dropped off.
    exact = seen["exact"]
    assert [row["cells"][:5] for row in exact["steps"]] == [
        ["1. Viewed home", "1,200", "100%", "", ""],
        ["2. Signed up or Opened docs", "600", "50%", "50%", "600 (50%)Who dropped offvisitor avisitor/b"],
        ["3. Paid ✓", "150", "12.5%", "25%", "450 (75%)Who dropped offLoading…"],
    ]
    assert exact["definition"] == "split by plan · order sequential · window 7 d · excluding Live ping"
    assert "1,234 visitors so far" in exact["backfill"]
    assert exact["medians"] == ["≤ 5 min", "≤ 1 d"]
    assert exact["histograms"] == [
        [["≤ 1 min", "100"], ["≤ 2 min", "0"], ["≤ 5 min", "400"], ["≤ 10 min", "100"]],
        [["≤ 1 d", "150"]],
    ]
    assert [row["cells"] for row in exact["days"]] == [
        ["2025-11-29", "800", "100", "12.5%"],
        ["2025-11-30", "400", "50", "12.5%"],
    ]
    assert [row["cells"][:4] for row in exact["values"]] == [
        ['"pro"', "700", "140", "20%"],
        ['"free"', "500", "10", "2%"],
    ]
    assert exact["dropped"] == [["visitor a", "#/visitor/visitor%20a"], ["visitor/b", "#/visitor/visitor%2Fb"]]
    assert exact["charts"] == 1
    visitor = seen["visitor"]
    assert visitor["title"] == "Visitor visitor/b" and visitor["erased"] == "visitor/b"
    assert [row["cells"] for row in visitor["properties"]] == [["plan", '"pro", {"seats":5}']]
    assert [row["cells"] for row in visitor["events"]] == [
        ["2025-11-30 00:00 UTC", HOME],
        ["2025-11-30 01:00 UTC", PAID],
    ]

    # The form: the server's refusal shown at the steps, then the same
    # definition as the API makes.
    assert seen["formError"]["steps"] == "a funnel needs at least two steps (event or event_id)"
    same = {"description": NEW_FUNNEL["description"], "event": NEW_FUNNEL["steps"], "property": NEW_FUNNEL["property"]}
    assert (await client.post(path(user_name, "shop", "funnel", "by-api"), same, auth=auth)).status == 201
    for name in (NEW_FUNNEL["name"], "by-api"):
        await server.app.backfills.finished(f"{user_name}/shop", name)
    from_form, by_api = await api("funnel", NEW_FUNNEL["name"]), await api("funnel", "by-api")
    # Saved one after the other, their backfills went through what visitors there were at the time.
    for report in (from_form, by_api):
        assert report["conversion"].pop("backfill")["state"] == "done"
    assert from_form == by_api
    assert [names[i] for i in from_form["event_ids"]] == NEW_FUNNEL["steps"]
    # Saved after the hits, the page showed it while its backfill ran: never more than the final numbers.
    shown = [number(row["cells"][1]) for row in seen["created"]]
    assert len(shown) == 3
    assert all(early <= final for early, final in zip(shown, from_form["conversion"]["visitors"], strict=True))

    # Live: the new event appeared without a reload.
    assert seen["live"]["posted"] == 200 and seen["live"]["notReloaded"] is True
    assert [number(cell) for cell in seen["live"]["row"][0]["cells"][1:3]] == [1, 1]

    # The reader: no write control anywhere, and a forged write refused.
    reader = seen["reader"]
    assert (reader["overviewWrite"], reader["funnelWrite"], reader["form"]) == (0, 0, 0)
    assert [number(row["cells"][1]) for row in reader["steps"]] == steps
    assert reader["forged"] == 401
    assert (await client.get(path(user_name, "shop", "funnel", "forged"), auth=auth)).status == 404

    # Phone width: nothing wider than the screen.
    assert seen["phone"] == {"overview": 0, "event": 0, "funnel": 0}

    # No errors but the two refusals the test provoked; nothing left the origin.
    refusals = [e for e in seen["console"] if "Failed to load resource" in e["text"]]
    assert [(e["context"], e["text"].split("status of ")[-1]) for e in refusals] == [
        ("owner", "400 (Bad Request)"),
        ("reader", "401 (Unauthorized)"),
    ], seen["console"]
    assert [e for e in seen["console"] if e not in refusals] == []
    assert seen["foreign"] == []
    assert seen["firstLoadBytes"] <= FIRST_LOAD_LIMIT, seen["firstLoadBytes"]
    print(f"first load: {seen['firstLoadBytes']} bytes in {seen['firstLoadRequests']} requests")
    for name in ("overview", "event", "funnel"):
        for scheme in ("light", "dark"):
            assert (SCREENSHOTS / f"{name}-{scheme}.png").stat().st_size > 10_000
