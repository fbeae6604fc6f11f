"""Makes `twistd hiitrack` available; everything else is in hiitrack.tap.

Twisted imports every module of the twisted/plugins folders on sys.path when
it looks for plugins, and the first file of this name wins over any later
checkout's: so this one imports nothing of hiitrack and names hiitrack.tap,
which twistd imports from sys.path once `hiitrack` is chosen.  Installed
into Twisted's plugin folder by `pip install .`, found in the checkout after
`pip install -e .`.  Tests: tests/test_packaging.py.
"""

from twisted.application.service import ServiceMaker

hiitrack = ServiceMaker(
    "HiiTrack",
    "hiitrack.tap",
    "Funnel analytics server: events, properties, paths and funnels over HTTP.",
    "hiitrack",
)
