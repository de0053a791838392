"""Insight Appliance: on-prem customer insight for banks, privacy first."""

from appliance import offline as _offline

# Before anything imports onnxruntime, Presidio or tldextract: no phone-home, no downloads.
_offline.enforce()

__version__ = "0.1.0"
