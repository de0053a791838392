"""Named points where a test makes the appliance fail on purpose, so that "killed mid-batch" or "disk full at
the commit" is a fixed point in the code and not a race with the clock.

    APPLIANCE_FAILPOINTS="export.after_commit=kill,ingest.before_commit=enospc@2"

Each entry is `point=action[@n]`: kill (SIGKILL to this process), stop (SIGSTOP, so a test can look at the
process and its workers at that moment), enospc or eio (an OSError as the disk would raise it), on the n-th
time the point is reached (default the first). Unset, a point costs one
environment look-up.
"""

import errno
import os
import signal
from collections import Counter

ACTIONS = ("kill", "stop", "enospc", "eio")
_reached: Counter = Counter()


def failpoint(name: str) -> None:
    spec = os.environ.get("APPLIANCE_FAILPOINTS")
    if not spec:
        return
    for entry in spec.split(","):
        point, _, action = entry.strip().partition("=")
        if point != name:
            continue
        action, _, nth = action.partition("@")
        _reached[name] += 1
        if _reached[name] != int(nth or 1):
            return
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
        if action in ("enospc", "eio"):
            code = errno.ENOSPC if action == "enospc" else errno.EIO
            raise OSError(code, os.strerror(code), f"failpoint {name}")
