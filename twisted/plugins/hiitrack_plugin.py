"""Makes `twistd hiitrack` available; everything else is in hiitrack.tap."""

from twisted.application.service import ServiceMaker

hiitrack = ServiceMaker(
    "HiiTrack",
    "hiitrack.tap",
    "Funnel analytics server: events, properties, paths and funnels over HTTP.",
    "hiitrack",
)
