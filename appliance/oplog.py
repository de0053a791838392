"""The operating log, for bank IT and their monitoring: JSON lines in `<home>/logs/appliance.jsonl`,
rotated by size, one object per event (time, level, logger, message, and named fields).

It is not the audit log: it says what the box did (a command, a job, a batch, an incident) so that an
operator can see why a night failed. Like every message of the appliance it names files, tables, columns,
rows, settings and counts, never a value from the data; an exception is logged by its type and code
locations only, because an exception's text may quote the row it failed on.
"""

import logging
import logging.handlers
import os
import traceback
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

LOGS = "logs"
FILE = "appliance.jsonl"
log = logging.getLogger("appliance")
_handler: logging.handlers.RotatingFileHandler | None = None


class _NoExceptionText(JsonFormatter):
    """An exception's message can quote data: keep its type and where it was raised."""

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        kind, _value, tb = ei
        frames = traceback.extract_tb(tb)
        return f"{kind.__name__} at " + " < ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))

    def formatStack(self, stack_info) -> str:  # noqa: N802
        return ""


def configure(home_path: Path, max_mib: int, keep: int) -> Path:
    """Send the appliance's log records to the home's rotated JSON-lines file (once per process and home)."""
    global _handler
    folder = Path(home_path) / LOGS
    target = folder / FILE
    if _handler is not None and _handler.baseFilename == os.path.abspath(target):
        return target
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(target, maxBytes=max_mib << 20, backupCount=keep,
                                                   encoding="utf-8", delay=True)
    handler.setFormatter(_NoExceptionText("{levelname}{name}{message}", style="{", timestamp="time",
                                          json_ensure_ascii=False,
                                          rename_fields={"levelname": "level", "name": "logger"}))
    if _handler is not None:  # another home opened in this process: its log, not the first one's
        log.removeHandler(_handler)
        _handler.close()
    _handler = handler
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return target
