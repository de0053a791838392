"""One small error hierarchy. Every message is safe to show: it names files, columns, rows and
settings, never a value from the data."""


class ApplianceError(Exception):
    code = "error"
    exit_code = 1

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ApplianceError):
    code = "config"


class KeyMaterialError(ApplianceError):
    """Missing, unreadable or wrong key material."""

    code = "key"
    exit_code = 3


class StoreError(ApplianceError):
    code = "store"
    exit_code = 4


class StoreWriteError(StoreError):
    """The store (or a file beside it) cannot be written: a full disk, a read-only mount, a failing disk."""

    exit_code = 6


class MappingError(ApplianceError):
    """A source mapping that does not validate; the message names file and line."""

    code = "mapping"


class IngestError(ApplianceError):
    """An input that cannot be ingested at all (as opposed to bad rows, which are quarantined)."""

    code = "ingest"


class PolicyError(ApplianceError):
    code = "policy"


class AccessError(ApplianceError):
    """Sign-in refused, or a role that may not do what was asked."""

    code = "access"
    exit_code = 5


class AuditError(ApplianceError):
    """The audit log cannot be written (so nothing is done), or it is not intact."""

    code = "audit"
    exit_code = 6


class SubjectError(ApplianceError):
    code = "subject"


class ExportError(ApplianceError):
    """An export that cannot go ahead (not pending, stale, no data), or a bundle that does not verify."""

    code = "export"
    exit_code = 9


def os_reason(exc: OSError) -> str:
    """An operating-system failure in words an operator acts on: the disk is full, the file system is
    read-only, the disk failed; never the file's contents."""
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk full"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno == errno.EIO:
        return "input/output error on the disk"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or type(exc).__name__
