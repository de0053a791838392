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


class MappingError(ApplianceError):
    """A source mapping that does not validate; the message names file and line."""

    code = "mapping"


class IngestError(ApplianceError):
    """An input that cannot be ingested at all (as opposed to bad rows, which are quarantined)."""

    code = "ingest"


class PolicyError(ApplianceError):
    code = "policy"
