"""HiiTrack's benchmark: ingest next to the bare HTTP floor, funnel reads, memory.

Not part of the installed package.  ``scripts/bench`` (or, from the checkout's
root, ``python -m benchmarks``) runs, on this machine and over loopback only:

1. the *floor*: a bare twisted.web server (``floor.py``, a subprocess) that
   parses the same tracking requests as HiiTrack and stores nothing;
2. HiiTrack (``twistd -n hiitrack``, a subprocess) on each store, recording
   ``POST /{u}/{b}/event/{name}`` (8 names) and ``/batch`` messages (5 events,
   2 properties) from 1,000 and from 100,000 random visitors;
3. a 4-step funnel report split by a 50-value property after 10^5 and after
   10^6 recorded events, and the server's resident memory after them.

The load generator is ``wrk`` (Debian) with the Lua script ``load.lua.tmpl``:
16 keep-alive connections, random visitor ids, form bodies.  The server's
totals, read back through the report API after each ingest run, must equal
wrk's count of 200 answers exactly; any difference, and any non-200 answer,
makes the run fail with exit status 1.  The figures are printed as one table
with the targets of issue 6.  Docs: docs/performance.md.
Tests: tests/test_bench_smoke.py.
"""
