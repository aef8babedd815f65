"""Configuration: built-in defaults, deep-merged with a TOML file and command-line options.

Reads `mailhygiene.toml` (or the file given with `--config`); writes nothing.
Called by the CLI once per command; library users call `load_config()` themselves.

Every setting has a default in DEFAULTS below (the README documents each one). Unknown keys in
the file are an error, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

DEFAULT_CONFIG_FILE = "mailhygiene.toml"

DEFAULTS: dict[str, Any] = {
    # Where events, the suppression list, state and reports live.
    "data_dir": "./mailhygiene-data",
    # IANA zone of the MTA hosts' syslog clocks and of the rule's calendar days. "" = this machine's zone.
    "timezone": "",
    # Log sources for `clean` and `watch`: [{path = "/var/log/mail.log*", format = "auto"}].
    "sources": [],
    "ingest": {
        # Force the year of syslog lines (0 = infer from the file's modification time).
        "year": 0,
        # Events buffered before a Parquet file is written (bounds memory).
        "batch_events": 50_000,
        # Rejected lines kept as samples per ingest run under <data_dir>/rejects/.
        "reject_samples": 1000,
    },
    "rule": {
        "min_errors": 2,
        "min_days": 2,
        "window_days": 7,
        "counted_reasons": ["user_unknown", "host_unknown", "mailbox_disabled", "mailbox_full"],
    },
    "guard": {
        # Refuse a run that adds more than this fraction of the addresses active in the window.
        "max_new_fraction": 0.05,
        # ... but only when the run would add more than this many addresses (small lists).
        "min_new": 20,
        # A carrier-day whose counted-error rate is at least this (with block_min_errors errors)
        # looks like the carrier blocking us, not like dead addresses.
        "block_rate": 0.5,
        "block_min_errors": 20,
    },
    "export": {
        # Written by `clean`; relative paths are under data_dir.
        "path": "exports/suppression.csv",
        "excel": False,
    },
    "report": {
        "dir": "reports",
        "fail_over": 0.0,
    },
    # Extra carrier domains: {docomo = ["example-docomo.jp"]}; merged over the package table.
    "carriers": {},
    "watch": {
        "flush_interval": 5.0,
        "poll_interval": 1.0,
    },
    # The sender (docs/sender.md). Rates are per carrier: at most `count` SMTP sends started in any
    # `interval` seconds; `rates` overrides `default_rate` per carrier (docomo, au, softbank, ...).
    "sender": {
        "from_address": "",
        "from_name": "",
        "envelope_from": "",
        "helo": "",
        "default_rate": {"count": 30, "interval": 1.0},
        "rates": {"au": {"count": 100, "interval": 60.0}},
        # iso-2022-jp (7bit) or utf-8 (base64); `charsets` overrides per carrier.
        "charset": "iso-2022-jp",
        "charsets": {},
        # Characters ISO-2022-JP cannot carry: "replace" (documented table, then UTF-8) or "utf8".
        "unmappable": "replace",
        # Domain, ".suffix" or carrier name -> "host:port"; anything else goes to default_relay.
        "routes": {},
        "default_relay": "127.0.0.1:25",
        "concurrency": 4,
        "messages_per_connection": 50,
        "max_recipients_per_session": 100,
        # Send nothing this many minutes either side of each full hour (0 = off); [] = all carriers.
        "quiet_minutes": 0,
        "quiet_carriers": [],
        "backoff_base": 60.0,
        "backoff_max": 3600.0,
        "max_attempts": 10,
        # A rate-limit reply (421, 450 "too many" ...) pauses that carrier this many seconds.
        "rate_limit_pause": 60.0,
        "timeout": 30.0,
        "poll_interval": 0.5,
    },
    # Requests by mail (docs/sender.md): who may ask, and the shared secret they must quote.
    "intake": {
        "allowed_senders": [],
        "shared_secret": "",
        "require_auth_results": False,
        # When set, only Authentication-Results headers from this authserv-id count.
        "auth_serv_id": "",
        # Where replies to requesters go out ("" = sender.default_relay).
        "reply_relay": "",
        "max_recipients": 200000,
    },
    "doctor": {
        # DNS server the doctor asks (an IP address); "" = this machine's resolver (/etc/resolv.conf).
        # Block lists refuse queries relayed by public resolvers: use your own resolver here.
        "resolver": "",
        "resolver_port": 53,
        # Seconds per DNS query, and per SPF evaluation lookup.
        "timeout": 5.0,
        # IP block lists (DNSBL zones) and domain block lists checked by `doctor setup`.
        "dnsbls": ["zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"],
        "domain_blocklists": ["dbl.spamhaus.org"],
        # `doctor message`: the spamassassin program (path or name on PATH) and its time limit.
        "spamassassin": "spamassassin",
        "spamassassin_timeout": 60.0,
    },
}

# Sections whose keys are free-form (tables of names chosen by the operator).
_FREE_FORM = {"carriers", "sender.rates", "sender.charsets", "sender.routes"}


@dataclass
class Config:
    """The effective configuration. `values` is the merged dict; helpers read common settings."""

    values: dict[str, Any]
    source: Path | None = None
    _tz: ZoneInfo | None = field(default=None, repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data_dir"]).expanduser()

    @property
    def timezone_name(self) -> str:
        return self.values["timezone"] or local_zone_name()

    @property
    def tz(self) -> ZoneInfo:
        if self._tz is None:
            self._tz = zone(self.timezone_name)
        return self._tz

    def path_in_data_dir(self, value: str | os.PathLike) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.data_dir / p


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
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
    except OSError:
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
        ZoneInfo(name)
        return True
    except (ZoneInfoNotFoundError, ValueError):
        return False


def _merge(base: dict, override: dict, path: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        where = f"{path}{key}"
        if key not in base and path.rstrip(".") not in _FREE_FORM:
            known = ", ".join(sorted(base)) or "(none)"
            raise ConfigError(f"unknown setting {where!r} in the config file; known here: {known}")
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            out[key] = _merge(base[key], value, f"{where}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(
    path: str | os.PathLike | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    timezone: str | None = None,
) -> Config:
    """Defaults <- TOML file (explicit path, else ./mailhygiene.toml if present) <- options."""
    values = copy.deepcopy(DEFAULTS)
    source = None
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        source = Path(path)
        try:
            with open(source, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {source} does not exist: create it or drop --config") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {source} is not valid TOML: {exc}") from None
        values = _merge(values, raw)
        # Relative data_dir in a file is relative to that file, so cron's cwd does not matter.
        if "data_dir" in raw and not Path(raw["data_dir"]).expanduser().is_absolute():
            values["data_dir"] = str((source.parent / raw["data_dir"]).resolve())
    if data_dir is not None:
        values["data_dir"] = str(data_dir)
    if timezone is not None:
        values["timezone"] = timezone
    cfg = Config(values=values, source=source)
    cfg.tz  # validate the zone early
    _validate(cfg)
    return cfg


def _validate(cfg: Config) -> None:
    rule = cfg["rule"]
    for key in ("min_errors", "min_days", "window_days"):
        if not isinstance(rule[key], int) or rule[key] < 1:
            raise ConfigError(f"rule.{key} must be a whole number >= 1 (got {rule[key]!r})")
    if rule["min_days"] > rule["window_days"]:
        raise ConfigError("rule.min_days cannot exceed rule.window_days")
    frac = cfg["guard"]["max_new_fraction"]
    if not isinstance(frac, (int, float)) or not 0 < frac <= 1:
        raise ConfigError(f"guard.max_new_fraction must be in (0, 1] (got {frac!r})")
    for i, src in enumerate(cfg["sources"]):
        if not isinstance(src, dict) or "path" not in src:
            raise ConfigError(f"sources[{i}] needs a path, e.g. {{path = \"/var/log/mail.log*\", format = \"auto\"}}")


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
        if isinstance(v, dict):
            nested[k] = v
        else:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in nested.items():
        _render_table(lines, f"{name}.{_toml_key(k)}", v)


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else '"' + k.replace('"', '\\"') + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))
