"""Keep third-party libraries from reaching the network or writing outside the home.

onnxruntime 1.32 queues telemetry under ~/.cache unless ORT_DISABLE_TELEMETRY is set before import;
tldextract (pulled in by Presidio's email recognizer) fetches the public suffix list unless told not to.
"""

import os

_FIXED = {
    "ORT_DISABLE_TELEMETRY": "1",
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
    # Until a home is open there is nowhere of ours to cache to: an empty path disables tldextract's cache
    # (its bundled suffix-list snapshot needs none), so nothing lands in ~/.cache.
    "TLDEXTRACT_CACHE": "",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "SPACY_WARNING_IGNORE": "W008",
}


def enforce() -> None:
    for name, value in _FIXED.items():
        os.environ[name] = value


def point_caches_at(home: str) -> None:
    """Library caches go inside the home so nothing is written to the user's ~/.cache."""
    cache = os.path.join(home, "cache")
    os.makedirs(cache, mode=0o700, exist_ok=True)
    os.environ["TLDEXTRACT_CACHE"] = os.path.join(cache, "tldextract")
    os.environ["XDG_CACHE_HOME"] = cache
