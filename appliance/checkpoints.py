"""Signed audit checkpoints, shipped off the box.

A hash chain cannot see its newest entries cut off, and whoever holds the home's key file could rewrite the
tail and sign new checkpoints for it. A checkpoint that has left the box cannot be rewritten: the scheduler
signs the log's head (count, hash, time) on a schedule and sends it to the target in the setting
`audit.checkpoint_target`:

- a folder, ideally a mounted WORM share: one new file per checkpoint (`checkpoint-<count>-<time>.json`),
  created exclusively and never rewritten; `audit verify` reads them back;
- `syslog://host:port` (UDP) or `syslog+tcp://host:port`: one JSON line per checkpoint to a remote syslog
  receiver (through the standard library's SysLogHandler); keep the receiver's file and pass it to
  `audit verify --checkpoint`.
"""

import json
import logging
import logging.handlers
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

from appliance.audit import Checkpoint, read_checkpoint_file
from appliance.errors import AuditError, ConfigError, os_reason

SETTING = "audit.checkpoint_target"


def parse_target(value: str, home: Path) -> tuple[str, object] | None:
    """(kind, where): ("folder", Path) or ("syslog", (host, port, socktype)); None when none is set."""
    value = (value or "").strip()
    if not value:
        return None
    if value.startswith(("syslog://", "syslog+tcp://")):
        parts = urlsplit(value)
        if not parts.hostname or not parts.port:
            raise ConfigError(f"setting '{SETTING}': a syslog target needs a host and a port (syslog://host:514)")
        kind = socket.SOCK_STREAM if parts.scheme == "syslog+tcp" else socket.SOCK_DGRAM
        return "syslog", (parts.hostname, parts.port, kind)
    folder = Path(value)
    return "folder", folder if folder.is_absolute() else home / folder


def ship(checkpoint: Checkpoint, target: tuple[str, object]) -> str:
    """Send one checkpoint to the target; returns where it went (for the audit entry)."""
    kind, where = target
    line = json.dumps(checkpoint.as_dict(), sort_keys=True)
    if kind == "folder":
        folder = Path(where)
        name = f"checkpoint-{checkpoint.count:012d}-{checkpoint.at.replace(':', '')}.json"
        try:
            handle = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                os.write(handle, (line + "\n").encode("ascii"))
                os.fsync(handle)
            finally:
                os.close(handle)
        except FileExistsError:
            pass  # the same checkpoint shipped twice: the first copy stands
        except OSError as exc:
            raise AuditError(f"the checkpoint cannot be written to {folder} ({os_reason(exc)})") from None
        return f"folder {folder.name}/{name}"
    host, port, socktype = where
    logger = logging.getLogger("appliance.checkpoints.syslog")
    handler = logging.handlers.SysLogHandler(address=(host, port), socktype=socktype,
                                             facility=logging.handlers.SysLogHandler.LOG_AUTH)
    try:
        handler.emit(logging.LogRecord(logger.name, logging.INFO, __file__, 0, "appliance-audit-checkpoint %s",
                                       (line,), None))
    except OSError as exc:
        raise AuditError(f"the checkpoint cannot be sent to syslog {host}:{port} ({os_reason(exc)})") from None
    finally:
        handler.close()
    return f"syslog {host}:{port}"


def shipped(target: tuple[str, object] | None) -> list[Checkpoint]:
    """The checkpoints the target holds, when the appliance can read them back (a folder)."""
    if target is None or target[0] != "folder" or not Path(target[1]).is_dir():
        return []
    found = []
    for path in sorted(Path(target[1]).glob("checkpoint-*.json")):
        found += read_checkpoint_file(path)
    return found
