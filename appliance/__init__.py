"""Insight Appliance: on-prem customer insight for banks, privacy first."""

import logging as _logging

from appliance import offline as _offline

# Before anything imports onnxruntime, Presidio or tldextract: no phone-home, no downloads.
_offline.enforce()

# The operating log goes to the home's JSON-lines file once a home is open (appliance.oplog); until then,
# nowhere (never Python's fallback to stderr, which would put a second line in front of the user).
_logging.getLogger("appliance").addHandler(_logging.NullHandler())

__version__ = "0.1.0"
