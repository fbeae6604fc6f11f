"""The HTTP API: a twisted.web resource tree shaped like its paths.

tree.Root → /{user} → /{user}/{bucket} → event, event_id, property,
property_id, funnel, batch.  Resources parse and validate; the work is done
by the application (hiitrack.app) and hiitrack.reports.
"""
