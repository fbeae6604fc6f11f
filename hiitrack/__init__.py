"""HiiTrack: a self-hosted funnel analytics server.

web (twisted.web resources) → tracking / reports (the work) → counting (the
semantics, pure) → store (SQLite or Cassandra).  See README.md.
"""

__version__ = "2.0.0"
