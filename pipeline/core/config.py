"""Configuration: typed, validated settings per stage, built from defaults <- TOML file <- options.

Reads `mailhygiene.toml` (or the file given with `--config`); writes nothing. The CLI and the jobs
call load_config() once per command and hand each stage the section it uses (`cfg.rule`,
`cfg.guard`, `cfg.sender`, ...); stage functions never read the file themselves.

Every setting and its default is declared once, as a field of the section dataclasses below
(with its range or choices in the field's metadata); DEFAULTS, `config show` and the README's
table follow from them. Validation is strict: unknown keys, wrong types (a bool is not a number, a
string is not a list), values out of range and unknown names are errors that name the file and the
key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError
from .frozen import frozen_dataclass
from .vocabulary import CARRIERS, MTA_FORMATS, REASONS, SENDER_CARRIERS, TLS_LEVELS

DEFAULT_CONFIG_FILE = "mailhygiene.toml"
# The production install's one config path (README "Production install"): read when no --config
# is given and there is no ./mailhygiene.toml.
SYSTEM_CONFIG_FILE = "/etc/mailhygiene/mailhygiene.toml"
SECRET_MASK = "********"


def setting(default, *, min=None, max=None, choices=None, secret=False, nonempty=False, factory=False,
            names=None):
    """A field with its default and what a valid value is (checked by load_config); `names`: the
    keys a table may have (a table per carrier: a mistyped carrier would be ignored silently)."""
    meta = {"min": min, "max": max, "choices": choices, "secret": secret, "nonempty": nonempty, "names": names}
    if factory:
        return field(default_factory=default, metadata=meta)
    return field(default=default, metadata=meta)


# ----------------------------------------------------------------------------- the sections
@frozen_dataclass
class SourceSettings:
    """One `[[sources]]` entry: a log file or glob for `clean` and `watch`."""

    # A log file or glob, e.g. "/var/log/mail.log*" (rotated and .gz files included); relative: to the config file.
    path: str = setting("", nonempty=True)
    # The MTA that wrote it; auto detects it per file.
    format: str = setting("auto", choices=("auto",) + MTA_FORMATS)
    # logrotate's `olddir` for this log, if it uses one (relative to the log's directory, as logrotate reads it): where a rotated copy is looked for after a restart or a copytruncate. "" = beside the log.
    olddir: str = setting("")


@frozen_dataclass
class IngestSettings:
    """`[ingest]`: how log lines are read into the store (the year of syslog stamps, batches, reject samples)."""

    # Force the year of syslog lines: that of each file's first line, a later month before its in the next year (0 = infer from the file's modification time).
    year: int = setting(0, min=0, max=9999)
    # Events buffered before a Parquet file is written (bounds memory).
    batch_events: int = setting(50_000, min=1)
    # Rejected lines kept as samples per ingest run under <data_dir>/rejects/ (watch: per day).
    reject_samples: int = setting(1000, min=0)
    # Sample files kept in <data_dir>/rejects/: a run that starts one removes the oldest beyond this many ...
    reject_files: int = setting(100, min=1)
    # ... beyond this many MiB in all ...
    reject_files_mib: int = setting(64, min=1)
    # ... and those older than this many days (0: no age limit); never the files of a run still going.
    reject_files_days: int = setting(30, min=0)


@frozen_dataclass
class RuleSettings:
    """An address is suppressed after `min_errors` counted errors on `min_days` distinct local
    days inside `window_days` consecutive days."""

    # Counted errors an address needs ...
    min_errors: int = setting(2, min=1)
    # ... on at least this many distinct local calendar days ...
    min_days: int = setting(2, min=1)
    # ... inside a window of this many consecutive days.
    window_days: int = setting(7, min=1, max=366)
    # What counts as an error (scope must be recipient: our own problems never count).
    counted_reasons: tuple[str, ...] = setting(
        ("user_unknown", "host_unknown", "mailbox_disabled", "mailbox_full"), choices=REASONS, nonempty=True)

    def label(self, timezone_name: str) -> str:
        return (f"min_errors={self.min_errors} min_days={self.min_days} window_days={self.window_days} "
                f"tz={timezone_name} reasons={'+'.join(self.counted_reasons)}")


@frozen_dataclass
class GuardSettings:
    """`[guard]`: how much one `suppress` run may add to the list before it is refused."""

    # Refuse a run that adds more than this fraction of the addresses active in the window (of the whole list, or of one carrier) ...
    max_new_fraction: float = setting(0.05, min=0.0, max=1.0)
    # ... but only when the run would add more than this many addresses (small lists).
    min_new: int = setting(20, min=0)
    # A carrier-day whose counted-error rate is at least this (with block_min_errors errors)
    # looks like the carrier blocking us, not like dead addresses.
    block_rate: float = setting(0.5, min=0.0, max=1.0)
    # ... and at least this many counted errors that carrier-day.
    block_min_errors: int = setting(20, min=1)
    # The same per local hour: a carrier-hour holding new entries' errors is a burst when it has
    # at least hour_min_errors counted errors making at least hour_rate of its attempts ...
    hour_rate: float = setting(0.5, min=0.0, max=1.0)
    # Counted errors a carrier-hour needs for either burst test.
    hour_min_errors: int = setting(20, min=1)
    # ... or when at least hour_min_errors of them (and recent_rate of its attempts) hit addresses
    # that had mail delivered within recent_hours before: our usual addresses, refused at once.
    recent_hours: float = setting(48.0, min=0.0, max=24.0 * 366)
    # Share of a carrier-hour's attempts those refusals of usual addresses must make.
    recent_rate: float = setting(0.02, min=0.0, max=1.0)


@frozen_dataclass
class ExportSettings:
    """`[export]`: the suppression list file that `clean` writes, and how `export` writes it."""

    # Written by `clean`; relative paths are under data_dir.
    path: str = setting("exports/suppression.csv", nonempty=True)
    # UTF-8 with a BOM so Excel opens it; for `clean` and `export` alike.
    excel: bool = setting(False)
    # `export --filtered`: addresses refused by a handset reception filter within this many days.
    filtered_days: int = setting(30, min=1, max=3660)


@frozen_dataclass
class ReportSettings:
    """`[report]`: where the report is written, in which language, and when `report` fails."""

    # Where `clean` and `report` write report.html, the CSV tables and the charts (relative: in data_dir).
    dir: str = setting("reports", nonempty=True)
    # `report` exits with status 2 when a carrier's unknown-user rate over the period exceeds this
    # fraction (0.04 = 4 %); 0 = off.
    fail_over: float = setting(0.0, min=0.0, max=1.0)
    # Language of report.html, the CSV headers, the charts and the terminal summaries of
    # report, clean, suppress and suppression list/show (the global or a command's --lang wins).
    lang: str = setting("en", choices=("en", "ja"))


@frozen_dataclass
class WatchSettings:
    """`[watch]`: how soon `watch` stores what it read, and how often it polls its files."""

    # Seconds until a live line is queryable.
    flush_interval: float = setting(5.0, min=0.05, max=3600.0)
    # Seconds between polls of the log files (file-system events only make reads sooner).
    poll_interval: float = setting(1.0, min=0.01, max=600.0)


@frozen_dataclass
class Rate:
    """At most `count` SMTP sends started in any `interval` seconds."""

    # SMTP sends started ...
    count: int = setting(30, min=1)
    # ... in any window of this many seconds.
    interval: float = setting(1.0, min=0.001)


@frozen_dataclass
class RelaySettings:
    """`[sender.relays."host:port"]`: how the sender talks to one relay (docs/sender.md "TLS and AUTH")."""

    # STARTTLS towards this relay: may, encrypt or verify; "" = sender.tls.
    tls: str = setting("", choices=("",) + TLS_LEVELS)
    # CA bundle (PEM) its certificate is checked against under "verify"; "" = sender.tls_ca_file.
    ca_file: str = setting("")
    # SMTP AUTH user name (AUTH PLAIN or LOGIN, only over TLS); "" = no AUTH.
    username: str = setting("")
    # The file holding the AUTH password (one line; not readable by others: mode 0600 or 0640).
    password_file: str = setting("")
    # TLS from the first byte (SMTPS, usually port 465) instead of STARTTLS; tls "may" counts as "encrypt".
    implicit_tls: bool = setting(False)


@frozen_dataclass
class SenderSettings:
    """The sender (docs/sender.md). Rates are per carrier; `rates` overrides `default_rate`."""

    # From (and, unless envelope_from, MAIL FROM) of every message.
    from_address: str = setting("")
    # Display name of From (RFC 2047 encoded), e.g. "配信センター".
    from_name: str = setting("")
    # MAIL FROM; "" = from_address.
    envelope_from: str = setting("")
    # EHLO name; "" = this host's FQDN.
    helo: str = setting("")
    # Rate of carriers without their own entry in rates: {count, interval}.
    default_rate: Rate = setting(Rate, factory=True)
    # Per carrier (docomo, au, softbank, ymobile, rakuten, other): {count, interval}.
    rates: dict[str, Rate] = setting(lambda: {"au": Rate(count=100, interval=60.0)}, factory=True,
                                     names=SENDER_CARRIERS)
    # iso-2022-jp (7bit) or utf-8 (base64); `charsets` overrides per carrier.
    charset: str = setting("iso-2022-jp", choices=("iso-2022-jp", "utf-8"))
    # Per carrier, e.g. {au = "utf-8"}.
    charsets: dict[str, str] = setting(dict, factory=True, choices=("iso-2022-jp", "utf-8"), names=SENDER_CARRIERS)
    # Characters ISO-2022-JP cannot carry: "replace" (documented table, then UTF-8), "substitute"
    # (also the emoji table and 〓: the message stays ISO-2022-JP) or "utf8".
    unmappable: str = setting("replace", choices=("replace", "utf8", "substitute"))
    # Domain, ".suffix" or carrier name -> "host:port"; anything else goes to default_relay.
    routes: dict[str, str] = setting(dict, factory=True)
    # The relay (host:port) of everything routes does not name.
    default_relay: str = setting("127.0.0.1:25", nonempty=True)
    # STARTTLS towards relays without their own `relays` entry: "may" (used when offered, the
    # certificate not checked; plain when not offered or when the handshake fails), "encrypt"
    # (required, not checked) or "verify" (required, certificate checked against the relay's host name).
    tls: str = setting("may", choices=TLS_LEVELS)
    # CA bundle (PEM) for "verify"; "" = the system's CA store.
    tls_ca_file: str = setting("")
    # Per relay "host:port" (as in routes): {tls, ca_file, username, password_file}.
    relays: dict[str, RelaySettings] = setting(dict, factory=True)
    # SMTP connections at once (= messages in flight).
    concurrency: int = setting(4, min=1, max=256)
    # Messages sent over one SMTP connection before it is closed.
    messages_per_connection: int = setting(50, min=1)
    # Recipients one SMTP session carries at most (the carriers' rule).
    max_recipients_per_session: int = setting(100, min=1)
    # Send nothing this many minutes either side of each full hour (0 = off).
    quiet_minutes: int = setting(0, min=0, max=29)
    # Carriers quiet_minutes applies to, e.g. ["docomo"]; [] = all.
    quiet_carriers: tuple[str, ...] = setting((), choices=SENDER_CARRIERS)
    # Seconds: a 4xx reply is retried after backoff_base * 2^(attempts - 1) ...
    backoff_base: float = setting(60.0, min=0.0)
    # ... but never later than this many seconds.
    backoff_max: float = setting(3600.0, min=0.0)
    # Attempts of a recipient; then it fails with reason "expired".
    max_attempts: int = setting(10, min=1)
    # A rate-limit reply (421, 450 "too many" ...) pauses that carrier this many seconds.
    rate_limit_pause: float = setting(60.0, min=0.0)
    # A relay that cannot be used (refused, timed out, unresolvable, a greeting refusing us, our
    # AUTH or its TLS refused) is paused this many seconds, twice as long at each failure in a row ...
    relay_pause: float = setting(60.0, min=0.0)
    # ... but never longer than this many seconds; a session that opens ends the run of failures.
    relay_pause_max: float = setting(1800.0, min=0.0)
    # SMTP socket timeout, seconds.
    timeout: float = setting(30.0, min=0.1)
    # Seconds between the daemon's looks for new work.
    poll_interval: float = setting(0.5, min=0.01)
    # "direct": the daemon delivers to each carrier (routes, its own throttle); "relay": every
    # message goes to default_relay (the local MTA), whose routes and limits come from
    # `mailhygiene send mta-config`.
    mode: str = setting("direct", choices=("direct", "relay"))
    # After a rate-limit reply the carrier's count is multiplied by this, then recovers linearly
    # to the full count over rate_recovery seconds.
    rate_limit_factor: float = setting(0.5, min=0.01, max=1.0)
    rate_recovery: float = setting(600.0, min=0.0)
    # Spread each window's quota evenly (interval/count apart) instead of one burst.
    pacing: bool = setting(False)
    # Concurrent SMTP sessions per carrier (0 = up to `concurrency`); `connections` per carrier.
    default_connections: int = setting(0, min=0, max=256)
    connections: dict[str, int] = setting(dict, factory=True, names=SENDER_CARRIERS)
    # Recipients (= messages, one recipient each) per SMTP session, per carrier (else
    # max_recipients_per_session).
    session_recipients: dict[str, int] = setting(dict, factory=True, names=SENDER_CARRIERS)
    # An idle connection is kept this long for the next window (0 = close when idle).
    idle_timeout: float = setting(10.0, min=0.0, max=300.0)
    # Results written to the queue in one transaction (at most 50 ms apart).
    commit_batch: int = setting(8, min=1, max=1000)
    # Seconds between moves of the daemon's event rows into the event store.
    event_flush_interval: float = setting(2.0, min=0.05, max=600.0)
    # VERP: MAIL FROM is local+rcptlocal=rcptdomain@domain, so `mailhygiene bounces` can tell
    # whose bounce a DSN is even when the DSN itself does not say.
    verp: bool = setting(False)
    # Extra entries for unmappable = "substitute": character -> text, e.g. {"🍣" = "(寿司)"}.
    substitutions: dict[str, str] = setting(dict, factory=True)

    def rate_for(self, carrier: str) -> Rate:
        return self.rates.get(carrier, self.default_rate)


@frozen_dataclass
class IntakeSettings:
    """Requests by mail (docs/sender.md): who may ask, and the shared secret they must quote."""

    # From addresses whose request mails are accepted.
    allowed_senders: tuple[str, ...] = setting(())
    # The secret a request must quote; "" = every request refused.
    shared_secret: str = setting("", secret=True)
    # Also require an Authentication-Results header with aligned DKIM or SPF pass.
    require_auth_results: bool = setting(False)
    # Only Authentication-Results headers from this authserv-id count (required by
    # require_auth_results: the receiving MTA's own, not one the requester wrote).
    auth_serv_id: str = setting("")
    # Where replies to requesters go out ("" = sender.default_relay).
    reply_relay: str = setting("")
    # Recipients one request mail may carry.
    max_recipients: int = setting(200_000, min=1)
    # A request mail larger than this is refused before anything in it is parsed.
    max_bytes: int = setting(10_000_000, min=1_000)
    # Replay protection: the Date header must be at most this old, and at most
    # max_future_minutes ahead; Message-ID and text hash are remembered this long.
    max_age_hours: float = setting(48.0, min=0.1, max=24.0 * 365)
    max_future_minutes: float = setting(60.0, min=0.0, max=24.0 * 60)


@frozen_dataclass
class DoctorSettings:
    """`[doctor]`: the resolver, block lists and spamassassin that the preflight checks use."""

    # DNS server the doctor asks (an IP address); "" = this machine's resolver (/etc/resolv.conf).
    # Block lists refuse queries relayed by public resolvers: use your own resolver here.
    resolver: str = setting("")
    # Port of that DNS server.
    resolver_port: int = setting(53, min=1, max=65535)
    # Seconds per DNS query, and per SPF evaluation lookup.
    timeout: float = setting(5.0, min=0.1, max=120.0)
    # IP block lists (DNSBL zones) checked by `doctor setup`.
    dnsbls: tuple[str, ...] = setting(("zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"))
    # Domain block lists checked by `doctor setup`.
    domain_blocklists: tuple[str, ...] = setting(("dbl.spamhaus.org",))
    # `doctor message`: the spamassassin program (path or name on PATH) and its time limit.
    spamassassin: str = setting("spamassassin", nonempty=True)
    # Seconds the spamassassin program may take.
    spamassassin_timeout: float = setting(60.0, min=1.0)
    # `doctor setup` first sends one probe to the resolver, for at most this many seconds: no
    # answer (or REFUSED) is an Error and exit status 1 before any check runs.
    probe_timeout: float = setting(3.0, min=0.1, max=30.0)
    # Treat WARN as failure (exit status 4), like --strict.
    strict: bool = setting(False)
    # `doctor message`: the Japanese spam-phrase file (TOML); "" = the list shipped in the package
    # (pipeline/preflight/data/ja_spam_phrases.toml).
    ja_spam_phrases: str = setting("")
    # Block lists whose test entry is not the RFC 5782 one (127.0.0.2 for IP lists, TEST for
    # domain lists): zone -> the IP or domain to ask instead. Merged over this table.
    blocklist_test_entries: dict[str, str] = setting(lambda: {"dbl.spamhaus.org": "dbltest.com"}, factory=True)


@frozen_dataclass
class ProviderSettings:
    """One `[classify.providers.NAME]` entry: whose servers (recipient domains, relay hosts, or a
    carrier's) and how their replies read from `since` to `until` (docs/classifier.md)."""

    # Recipient domains of this provider.
    domains: tuple[str, ...] = setting(())
    # Relay host names (or suffixes) of this provider's servers.
    relays: tuple[str, ...] = setting(())
    # Or: the carrier whose domains it serves.
    carrier: str = setting("", choices=("",) + CARRIERS)
    # Dates as "YYYY-MM-DD" (inclusive); "" = open-ended.
    since: str = setting("")
    # Last day of this behaviour ("" = still so).
    until: str = setting("")
    # "unknown user" refused after DATA: filtered | user_unknown | by_code ("" = package default).
    unknown_user_after_data: str = setting("", choices=("", "filtered", "user_unknown", "by_code"))
    # the same words when the log does not show the SMTP phase: user_unknown | filtered.
    unknown_user_without_phase: str = setting("", choices=("", "user_unknown", "filtered"))
    # Why (shown by `classify --explain`).
    note: str = setting("")


@frozen_dataclass
class ClassifySettings:
    """The classifier's tables, extended (docs/classifier.md): phrases per reason and providers."""

    # Extra phrases per reason, e.g. {user_unknown = ["宛先不明"]}; added to the package tables.
    phrases: dict[str, tuple[str, ...]] = setting(dict, factory=True, choices=REASONS)
    # Provider behaviour by domain or relay and date: [classify.providers.NAME] tables.
    providers: dict[str, ProviderSettings] = setting(dict, factory=True)


@frozen_dataclass
class StoreSettings:
    """The shared event lake (docs/scale-out.md): where this node uploads its sealed event files
    and where `suppress`, `report` and pipeline.connect() read every node's events from."""

    # "" = local only (as before); "s3://bucket/prefix", or a local/NFS directory path.
    url: str = setting("")
    # An S3-compatible server (MinIO, Ceph RGW): "http://127.0.0.1:9000". "" = AWS S3.
    endpoint_url: str = setting("")
    # "" = AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.
    region: str = setting("")
    # This MTA host's name in the lake (events/node=<node>/...): letters, digits, ".", "_", "-".
    node: str = setting("")
    # Closed days (older than this many days, UTC) of this node with several objects are merged
    # into one object by `clean` (0 = never).
    compact_after_days: int = setting(3, min=0, max=366)
    # `watch` uploads at most this often (seconds; its first commit and its stop at once): the
    # day's new files are merged into one object per upload, so a busy node adds one object a
    # day per interval, not one per commit (0 = after every commit).
    upload_interval: float = setting(300.0, min=0.0, max=86400.0)


@frozen_dataclass
class SparkSettings:
    """Apache Spark for `suppress --engine spark` (the `.[spark]` extra, Java 17)."""

    # Where Spark runs: "local[*]" (this machine, every core), "local[2]", "k8s://https://...",
    # "spark://host:7077", "yarn" (docs/scale-out.md).
    master: str = setting("local[*]", nonempty=True)
    # spark.sql.shuffle.partitions (Spark's default of 200 is far too many on one machine).
    shuffle_partitions: int = setting(8, min=1, max=100_000)
    # spark.driver.memory of a session this process starts (local mode: all of Spark's memory).
    driver_memory: str = setting("2g", nonempty=True)


@frozen_dataclass
class FileSettings:
    """The top level of the file: where data lives, the zone, the sources and every section."""

    # Where events, the suppression list, state and reports live (relative to the config file, the default too; without a config file: to the current directory). A new or empty directory, or one mailhygiene made (marker .mailhygiene-data-dir); one holding other files is refused, and so is one that held data before and is missing or empty now, until --init-data-dir (README "Data layout").
    data_dir: str = setting("./mailhygiene-data", nonempty=True)
    # IANA zone of the MTA hosts' syslog clocks and of the rule's calendar days. "" = this machine's zone.
    timezone: str = setting("")
    # Log files for `clean` and `watch`: [[sources]] entries (path, format).
    sources: tuple[SourceSettings, ...] = setting(())
    # Extra carrier domains: {docomo = ["example-docomo.jp"]}; merged over the package table.
    carriers: dict[str, tuple[str, ...]] = setting(dict, factory=True, choices=CARRIERS)
    ingest: IngestSettings = setting(IngestSettings, factory=True)
    rule: RuleSettings = setting(RuleSettings, factory=True)
    guard: GuardSettings = setting(GuardSettings, factory=True)
    export: ExportSettings = setting(ExportSettings, factory=True)
    report: ReportSettings = setting(ReportSettings, factory=True)
    watch: WatchSettings = setting(WatchSettings, factory=True)
    sender: SenderSettings = setting(SenderSettings, factory=True)
    intake: IntakeSettings = setting(IntakeSettings, factory=True)
    doctor: DoctorSettings = setting(DoctorSettings, factory=True)
    classify: ClassifySettings = setting(ClassifySettings, factory=True)
    # The shared event lake of many MTA nodes, and the query engine of `suppress`.
    store: StoreSettings = setting(StoreSettings, factory=True)
    # Where `suppress` runs the SQL that reads the events: "duckdb" (in this process) or "spark"
    # (the `.[spark]` extra and Java 17; `suppress --engine` overrides it).
    engine: str = setting("duckdb", choices=("duckdb", "spark"))
    spark: SparkSettings = setting(SparkSettings, factory=True)


# ----------------------------------------------------------------------------- the effective config
@frozen_dataclass
class Config:
    """The effective configuration: the typed sections plus the resolved data dir and zone."""

    settings: FileSettings
    source: Path | None = None
    timezone_name: str = "UTC"
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"), repr=False)

    # typed sections, the way stage code reads them
    @property
    def data_dir(self) -> Path:
        return Path(self.settings.data_dir).expanduser()

    @property
    def sources(self) -> tuple[SourceSettings, ...]:
        return self.settings.sources

    @property
    def carriers(self) -> dict[str, tuple[str, ...]]:
        return self.settings.carriers

    ingest = property(lambda self: self.settings.ingest)
    rule = property(lambda self: self.settings.rule)
    guard = property(lambda self: self.settings.guard)
    export = property(lambda self: self.settings.export)
    report = property(lambda self: self.settings.report)
    watch = property(lambda self: self.settings.watch)
    sender = property(lambda self: self.settings.sender)
    intake = property(lambda self: self.settings.intake)
    doctor = property(lambda self: self.settings.doctor)
    classify = property(lambda self: self.settings.classify)
    store = property(lambda self: self.settings.store)
    engine = property(lambda self: self.settings.engine)
    spark = property(lambda self: self.settings.spark)

    def path_in_data_dir(self, value: str | os.PathLike) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.data_dir / p

    @property
    def values(self) -> dict[str, Any]:
        """The settings as plain TOML-shaped values (what `config show` prints, secrets included)."""
        return to_plain(self.settings)

    def __getitem__(self, key: str) -> Any:
        """Transitional dict-style access (`cfg["rule"]["min_errors"]`): plain values of a section.
        New code reads the typed sections (`cfg.rule.min_errors`)."""
        return self.values[key]


# Files of a system's zoneinfo directory that ZoneInfo opens but that are no zone names: the SQL
# (DuckDB's ICU zones) knows none of them, so a run would end in an internal error half-way.
NOT_ZONE_NAMES = frozenset({"localtime", "posixrules", "Factory"})
NOT_ZONE_PREFIXES = ("posix/", "right/")


def zone(name: str) -> ZoneInfo:
    if name in NOT_ZONE_NAMES or name.startswith(NOT_ZONE_PREFIXES):
        raise ConfigError(f"time zone {name!r} is a file of the zone database, not a zone name: use an "
                          "IANA name such as Asia/Tokyo or UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, UnicodeDecodeError):  # OSError: "Asia", a directory
        raise ConfigError(
            f"unknown time zone {name!r}: use an IANA name such as Asia/Tokyo or UTC"
        ) from None


def local_zone_name() -> str:
    """The machine's zone as an IANA name (TZ, /etc/timezone, /etc/localtime), else UTC."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz and _is_zone(tz):
        return tz
    try:
        name = Path("/etc/timezone").read_text().strip()
        if _is_zone(name):
            return name
    except (OSError, UnicodeDecodeError):
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            name = target.split("zoneinfo/", 1)[1]
            if _is_zone(name):
                return name
    except OSError:
        pass
    return "UTC"


def _is_zone(name: str) -> bool:
    try:
        zone(name)
        return True
    except ConfigError:
        return False


def load_config(
    path: str | os.PathLike | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    timezone: str | None = None,
) -> Config:
    """Defaults <- TOML file (explicit path, else ./mailhygiene.toml, else
    /etc/mailhygiene/mailhygiene.toml, whichever is present first) <- options."""
    raw: dict[str, Any] = {}
    source = None
    if path is None:
        path = next((p for p in (DEFAULT_CONFIG_FILE, SYSTEM_CONFIG_FILE) if _is_file(p)), None)
    if path is not None:
        source = Path(path)
        raw = read_toml(source)
    where = f"config file {source}" if source else "configuration"
    settings = build(FileSettings, raw, where)
    # relative paths of a config file are relative to its folder, so cron's or the shell's cwd
    # does not matter; not for a config that is no file in a folder (`--config /dev/null`,
    # `--config <(...)`): /dev or /dev/fd is no place for data, their paths stay the cwd's
    anchored = source is not None and _is_file(str(source))
    if anchored and not Path(settings.data_dir).expanduser().is_absolute():
        # a relative data_dir, and the default "./mailhygiene-data" of a file that names none:
        # a `suppression add` typed in another directory must reach the nightly job's list
        settings = dataclasses.replace(settings, data_dir=str((source.parent / settings.data_dir).resolve()))
    if anchored:
        # the same for a relative [[sources]] path: the timer (cwd /var/lib/mailhygiene), cron
        # (the user's home) and a shell read the same logs
        settings = dataclasses.replace(settings, sources=tuple(
            s if os.path.isabs(os.path.expanduser(s.path)) or s.path == "-"
            else dataclasses.replace(s, path=os.path.normpath(os.path.join(source.parent.absolute(), s.path)))
            for s in settings.sources))
    if data_dir is not None:
        if not str(data_dir):
            raise ConfigError("--data-dir must not be empty")
        settings = dataclasses.replace(settings, data_dir=str(data_dir))
    if timezone is not None:
        settings = dataclasses.replace(settings, timezone=timezone)
    rule = settings.rule
    if rule.min_days > rule.window_days:
        raise ConfigError(f"{where}: rule.min_days ({rule.min_days}) cannot exceed rule.window_days ({rule.window_days})")
    if rule.min_days > rule.min_errors:
        raise ConfigError(f"{where}: rule.min_days ({rule.min_days}) cannot exceed rule.min_errors "
                          f"({rule.min_errors}): each day needs an error")
    if settings.sender.backoff_max < settings.sender.backoff_base:
        raise ConfigError(f"{where}: sender.backoff_max must be >= sender.backoff_base")
    if settings.sender.relay_pause_max < settings.sender.relay_pause:
        raise ConfigError(f"{where}: sender.relay_pause_max must be >= sender.relay_pause")
    name = settings.timezone or local_zone_name()
    try:
        tz = zone(name)
    except ConfigError as exc:
        if timezone is None and source is not None and settings.timezone:  # the file's: say which
            raise ConfigError(f"{where}: timezone: {exc}") from None
        raise
    return Config(settings=settings, source=source, timezone_name=name, tz=tz)


def _is_file(path: str) -> bool:
    """Path.is_file(), except that a directory we may not enter (`sudo -u mailhygiene` from
    /root) means "no file here" instead of a PermissionError."""
    try:
        return Path(path).is_file()
    except OSError:
        return False


# A config file is a few KB; more is the wrong file (`--config /dev/zero`, a log, a database):
# read no further than this, so such a file is an error and not the whole memory.
CONFIG_MAX_BYTES = 1 << 20


def read_toml(path: Path) -> dict[str, Any]:
    """The file as a dict; every way it can be unreadable is a ConfigError naming the file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(CONFIG_MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist: create it or drop --config") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(data) > CONFIG_MAX_BYTES:
        raise ConfigError(f"config file {path} is larger than {CONFIG_MAX_BYTES >> 20} MiB: not a config file "
                          "(a log, a device?); give the TOML file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (bad byte at offset {exc.start}): "
                          "save it as UTF-8") from None
    # Notepad (Windows 10 before 1903, and "UTF-8 with BOM" since) starts the file with a BOM,
    # which TOML does not allow: "Invalid statement (at line 1, column 1)" would not say why
    text = text.removeprefix("\ufeff")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


# ----------------------------------------------------------------------------- building and checking
T = typing.TypeVar("T")


def build(cls: type[T], raw: Any, where: str, prefix: str = "") -> T:
    """An instance of the settings dataclass `cls` from TOML values, every key and type checked."""
    if not isinstance(raw, dict):
        name = prefix.rstrip(".")
        if name.endswith("]"):  # an entry of an array of tables: sources = ["/var/log/mail.log"]
            array = name.rsplit("[", 1)[0].rsplit(".", 1)[-1]
            raise ConfigError(f"{where}: {name} must be a table: write each entry as a line [[{array}]], then "
                              f"its settings (path = \"...\"), got {_show(raw)}")
        raise ConfigError(f"{where}: {name or 'the file'} must be a table, got {_show(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{where}: unknown setting {prefix + unknown[0]!r}; known here: {known}")
    for name, f in fields.items():
        if name not in raw and f.metadata.get("nonempty") and f.default is not dataclasses.MISSING and not f.default:
            raise ConfigError(f"{where}: {prefix + name} is required")
    hints = typing.get_type_hints(cls)
    values = {name: _convert(hints[name], value, fields[name].metadata, where, prefix + name)
              for name, value in raw.items()}
    for name, value in values.items():
        f = fields[name]
        if typing.get_origin(hints[name]) is dict and f.default_factory is not dataclasses.MISSING:
            # tables of names (rates per carrier, routes ...) extend the built-in table
            values[name] = {**f.default_factory(), **value}
    return cls(**values)


def _convert(tp, value, meta: Mapping, where: str, key: str):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where, key + ".")
    if origin is tuple:  # tuple[X, ...]: a TOML array
        (item_tp, _) = typing.get_args(tp)
        if not isinstance(value, list):
            if dataclasses.is_dataclass(item_tp):  # [[sources]]: an array of tables
                name = key.rsplit(".", 1)[-1]
                raise ConfigError(f"{where}: {key} must be [[{name}]] tables, one per entry: a line [[{name}]], "
                                  f"then its settings (path = \"...\"), got {_show(value)}")
            raise ConfigError(f"{where}: {key} must be a list, e.g. [\"a\", \"b\"], got {_show(value)}")
        items = tuple(_convert(item_tp, v, {}, where, f"{key}[{i}]") for i, v in enumerate(value))
        if meta.get("nonempty") and not items:
            raise ConfigError(f"{where}: {key} must not be empty")
        _check_choices(items, meta, where, key)
        return items
    if origin is dict:  # dict[str, X]: a TOML table with names chosen by the operator
        (_, val_tp) = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a table, got {_show(value)}")
        out = {}
        for k, v in value.items():
            if val_tp is str:
                out[k] = _convert(str, v, {}, where, f"{key}.{k}")
                _check_choices((out[k],), meta, where, f"{key}.{k}")
            else:
                out[k] = _convert(val_tp, v, {}, where, f"{key}.{k}")
        if typing.get_origin(val_tp) is tuple:  # carrier -> domains: names are the choices
            _check_choices(tuple(out), meta, where, key, what="name")
        if meta.get("names"):
            _check_choices(tuple(out), {"choices": meta["names"]}, where, key, what="carrier")
        return out
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: {key} must be a whole number, got {_show(value)}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}: {key} must be a number, got {_show(value)}")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string (in quotes), got {_show(value)}")
        if "\x00" in value:
            raise ConfigError(f"{where}: {key} must not contain a NUL character")
        if meta.get("nonempty") and not value.strip():
            raise ConfigError(f"{where}: {key} must not be empty")
    else:  # pragma: no cover - a field type this function does not know is a programming error
        raise TypeError(f"unsupported setting type {tp!r} for {key}")
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and value < lo:
        raise ConfigError(f"{where}: {key} must be >= {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(f"{where}: {key} must be <= {hi}, got {value!r}")
    if tp is str:
        _check_choices((value,), meta, where, key)
    return value


def _check_choices(values, meta, where, key, what="value") -> None:
    choices = meta.get("choices")
    if not choices:
        return
    for v in values:
        if v not in choices:
            raise ConfigError(f"{where}: {key} has unknown {what} {v!r}; choose from: {', '.join(choices)}")


def _show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return f"a {'table' if isinstance(value, dict) else 'list'} ({_toml_value(value)[:60]})"
    return repr(value)


def to_plain(obj, *, mask_secrets: bool = False):
    """Settings as TOML-shaped values (tables, lists, scalars)."""
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if mask_secrets and f.metadata.get("secret") and v:
                out[f.name] = SECRET_MASK
            else:
                out[f.name] = to_plain(v, mask_secrets=mask_secrets)
        return out
    if isinstance(obj, dict):
        return {k: to_plain(v, mask_secrets=mask_secrets) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [to_plain(v, mask_secrets=mask_secrets) for v in obj]
    if mask_secrets and isinstance(obj, str) and "://" in obj:
        return mask_url(obj)
    return obj


_URL_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@]*)@")
_URL_QUERY = re.compile(r"([?#]).*$", re.S)


def mask_url(url: str, *, query: bool = False) -> str:
    """A url as it may be shown (`config show`, messages): the password of its user part masked
    (http://user:********@host), a user part without one (a token) masked whole; with `query`,
    its query too (a presigned url's signature, where no query belongs: the lake's urls)."""
    def user(m: re.Match) -> str:
        name, colon, _ = m.group(2).partition(":")
        return f"{m.group(1)}{name}:{SECRET_MASK}@" if colon else f"{m.group(1)}{SECRET_MASK}@"

    shown = _URL_USERINFO.sub(user, url)
    return _URL_QUERY.sub(rf"\1{SECRET_MASK}", shown) if query else shown


# The defaults as plain values (the README's table, tests and `config show` of an empty file).
DEFAULTS: dict[str, Any] = to_plain(FileSettings())


def effective_values(cfg: Config, *, mask_secrets: bool = True) -> dict[str, Any]:
    """What `config show` prints: every setting with the resolved data dir and zone."""
    values = to_plain(cfg.settings, mask_secrets=mask_secrets)
    values["timezone"] = cfg.timezone_name
    values["data_dir"] = str(cfg.data_dir)
    return values


# ----------------------------------------------------------------------------- TOML out
def render_toml(values: dict[str, Any]) -> str:
    """The effective configuration as TOML (what `config show` prints)."""
    lines: list[str] = []
    scalars = {k: v for k, v in values.items() if not isinstance(v, (dict, list)) or (isinstance(v, list) and not v)}
    tables = {k: v for k, v in values.items() if isinstance(v, dict)}
    arrays = {k: v for k, v in values.items() if isinstance(v, list) and v}
    for k, v in scalars.items():
        lines.append(f"{k} = {_toml_value(v)}")
    for k, items in arrays.items():
        for item in items:
            lines.append("")
            lines.append(f"[[{k}]]")
            for ik, iv in item.items():
                lines.append(f"{ik} = {_toml_value(iv)}")
    for k, table in tables.items():
        _render_table(lines, k, table)
    return "\n".join(lines) + "\n"


def _render_table(lines: list[str], name: str, table: dict) -> None:
    lines.append("")
    lines.append(f"[{name}]")
    nested = {}
    for k, v in table.items():
        if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            nested[k] = v
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in nested.items():
        _render_table(lines, f"{name}.{_toml_key(k)}", v)


def _toml_key(k: str) -> str:
    return k if k and k.replace("_", "").replace("-", "").isalnum() and k.isascii() else _toml_string(k)


def _toml_string(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(c if c >= " " and c != "\x7f" else f"\\u{ord(c):04x}" for c in out)
    return '"' + out + '"'


def toml_value(v: Any) -> str:
    """One plain value (to_plain) as TOML text: `"a"`, `[1, 2]`, `{a = 1}` (the README's table)."""
    return _toml_value(v)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))
