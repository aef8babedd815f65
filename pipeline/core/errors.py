"""Small named exceptions. Each message says what went wrong and how to fix it.

The CLI turns any MailHygieneError into one line `Error: <message>` and exit status 1.
"""


class MailHygieneError(Exception):
    """Base class: an expected failure whose message is meant for the operator."""


class ConfigError(MailHygieneError):
    """The configuration file or a command-line option is invalid."""


class InputError(MailHygieneError):
    """A file, address, date or other argument given by the user cannot be used."""


class NoDataError(MailHygieneError):
    """The data directory holds no events (or nothing to act on) yet."""


class LockedError(MailHygieneError):
    """Another run holds the lock for this data directory."""


class GuardTripped(MailHygieneError):
    """The suppression guard refused to apply a run that looks like a mistake (exit status 3)."""

    exit_code = 3


class StoreError(MailHygieneError):
    """Events could not be written to the event store (disk full, permissions, …)."""


class StoreCorrupt(MailHygieneError):
    """A file of the data directory cannot be read (a truncated or damaged Parquet file, a
    corrupt database); the message names the file and how to recover."""


class SuppressionUnavailable(MailHygieneError):
    """The suppression list is missing, unreadable or older than its history: whoever needs it
    (the sender above all) must stop rather than send to addresses that may be suppressed."""


class LakeError(MailHygieneError):
    """The shared event lake ([store] url) cannot be used: unreachable, refused, misconfigured,
    or a server that cannot guarantee create-only uploads."""


class LakeConflict(LakeError):
    """An object the node would create already exists with different content: two nodes share a
    node name, or the local store was rebuilt differently. Nothing was overwritten."""
