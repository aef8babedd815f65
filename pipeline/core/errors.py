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
    """The suppression guard refused to apply a run that looks like a mistake (exit status 3).
    `result`: the refused run (suppression.rule.RuleResult, applied False), for `--json`."""

    exit_code = 3

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class StoreError(MailHygieneError):
    """Events could not be written to the event store (disk full, permissions, …)."""


class StoreCorrupt(MailHygieneError):
    """A file of the data directory cannot be read (a truncated or damaged Parquet file, a
    corrupt database); the message names the file and how to recover."""


class EventFileVanished(StoreCorrupt):
    """An event file listed by a query was gone when it was read: a running `watch` merged that
    day's files (docs/watch.md, Compaction). Nothing is damaged; the same query run again reads
    the merged file."""


class SuppressionUnavailable(MailHygieneError):
    """The suppression list is missing, unreadable or older than its history: whoever needs it
    (the sender above all) must stop rather than send to addresses that may be suppressed."""


class LakeError(MailHygieneError):
    """The shared event lake ([store] url) cannot be used: unreachable, refused, misconfigured,
    or a server that cannot guarantee create-only uploads."""


class LakeConflict(LakeError):
    """An object the node would create already exists with different content: two nodes share a
    node name, or the local store was rebuilt differently. Nothing was overwritten."""


def unreadable_file(exc: BaseException) -> StoreCorrupt | None:
    """A StoreCorrupt naming the damaged Parquet file of the data dir when `exc` (an error of
    DuckDB or Arrow) says it could not read one, with what to do about it; None otherwise.
    Callers that read the store raise it `from None` in place of the engine's error."""
    import re

    if not type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb", "pyarrow"):
        return None
    text = str(exc)
    found = re.search(r"""['"]([^'"\n]+\.parquet)['"]""", text)
    if not found:
        return None
    path = found.group(1)
    reason = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    if ("/events/" in path or path.startswith("events/")) and ("No such file" in text or "No files found" in text):
        import os

        if not os.path.exists(path):  # replaced by a compaction between the listing and the read: not damaged
            return EventFileVanished(f"{path} was replaced while it was read (a running `watch` merged that day's "
                                     "files): nothing was changed; run the command again")
    if "/events/" in path or path.startswith("events/"):
        fix = ("A damaged event file: move it out of the data dir (its events are then missing; "
               "re-read that day's logs with `mailhygiene ingest --reread LOGS`), or restore it from a backup.")
    elif path.endswith("history.parquet"):
        fix = "Restore it from a backup: the history is what the suppression list is rebuilt from."
    elif path.endswith("current.parquet"):
        fix = ("Restore it from a backup, or rebuild the list from its history with "
               "`mailhygiene suppression repair`.")
    else:
        fix = "Restore it from a backup."
    return StoreCorrupt(f"cannot read {path}: {reason}. {fix}")
