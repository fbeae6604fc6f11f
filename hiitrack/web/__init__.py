"""The HTTP API: a twisted.web resource tree shaped like its paths.

root.Root → /{user} → /{user}/{bucket} → event, event_id, property,
property_id, funnel, batch.  Resources parse and validate; the work is done
by hiitrack.tracking and hiitrack.reports.
"""
