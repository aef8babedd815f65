"""Provider behaviour as data: whose server answered, and how its replies read on a given day.

Reads `pipeline/classify/data/providers.toml` (package data), the carrier table (carriers.py, for
providers that are a carrier) and the config's `[classify.providers.NAME]` entries. Writes
nothing. Called by classifier.classify() once per event (a dict look-up after the first event of a
domain) and by `mailhygiene classify --explain`.

The classifier's caches are keyed by a small *provider key* ("docomo#0", "yahoo#0" or None), not
by the recipient domain or relay, so a million distinct domains still share a few cache entries.

Look-up order (carriers.md): the recipient domain (exact or a parent domain), else the host name
of the MX that answered (`relay`), else the carrier name the caller passes. Within a provider the
first period whose [since, until] covers the event's day decides; without a day, the first
open-ended period (the current behaviour).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from ..core.errors import ConfigError
from .carriers import CarrierTable, default_table, expand_pattern, host_of, suffix_lookup

AFTER_DATA = ("filtered", "user_unknown", "by_code")
WITHOUT_PHASE = ("user_unknown", "filtered")
_TABLE_FILE = Path(__file__).with_name("data") / "providers.toml"
_MISSING = object()
_PERIOD_KEYS = {"since", "until", "unknown_user_after_data", "unknown_user_without_phase", "note"}


@dataclass(frozen=True, slots=True)
class Period:
    """How one provider's replies read between `since` and `until` (inclusive)."""

    provider: str
    since: date | None = None
    until: date | None = None
    unknown_user_after_data: str = "by_code"
    unknown_user_without_phase: str = "user_unknown"
    note: str = ""

    def covers(self, day: date) -> bool:
        return (self.since is None or day >= self.since) and (self.until is None or day <= self.until)

    def label(self) -> str:
        span = ""
        if self.since and self.until:
            span = f" {self.since}..{self.until}"
        elif self.since:
            span = f" since {self.since}"
        elif self.until:
            span = f" until {self.until}"
        return self.provider + span


DEFAULT_PERIOD = Period("default", note="no provider rule: the generic rules apply")


def _date(value, where: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{where} must be a date as \"YYYY-MM-DD\", got {value!r}") from None


def _period(name: str, raw: Mapping, where: str) -> Period:
    unknown = set(raw) - _PERIOD_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}; known: {', '.join(sorted(_PERIOD_KEYS))}")
    after = raw.get("unknown_user_after_data") or "by_code"
    without = raw.get("unknown_user_without_phase") or "user_unknown"
    if after not in AFTER_DATA:
        raise ConfigError(f"{where}.unknown_user_after_data must be one of {', '.join(AFTER_DATA)}, got {after!r}")
    if without not in WITHOUT_PHASE:
        raise ConfigError(f"{where}.unknown_user_without_phase must be one of {', '.join(WITHOUT_PHASE)}, got {without!r}")
    p = Period(name, _date(raw.get("since"), f"{where}.since"), _date(raw.get("until"), f"{where}.until"),
               after, without, str(raw.get("note") or ""))
    if p.since and p.until and p.since > p.until:
        raise ConfigError(f"{where}: since ({p.since}) is after until ({p.until})")
    return p


class ProviderTable:
    """Providers: their domains and relay hosts, and their behaviour periods."""

    def __init__(self, providers: Mapping[str, Mapping], carriers: CarrierTable | None = None):
        carriers = carriers or default_table()
        self.domains: dict[str, str] = {}
        self.relays: dict[str, str] = {}
        self.by_carrier: dict[str, str] = {}
        self.periods: dict[str, tuple[Period, ...]] = {}
        self._keys: dict[str, Period] = {}
        for name, spec in providers.items():
            where = f"provider {name!r}"
            carrier = spec.get("carrier") or ""
            domains = list(spec.get("domains", ()))
            relays = list(spec.get("relays", ()))
            if carrier:
                domains += [d for d, c in carriers.domains.items() if c == carrier]
                relays += [r for r, c in carriers.relays.items() if c == carrier]
                self.by_carrier[carrier] = name
            for entry in domains:
                for d in expand_pattern(entry):
                    self.domains[d] = name
            for entry in relays:
                for r in expand_pattern(entry):
                    self.relays[r] = name
            periods = tuple(_period(name, raw, f"{where} period {i + 1}") for i, raw in enumerate(spec.get("period", ())))
            self.periods[name] = periods or (Period(name),)
            for i, p in enumerate(self.periods[name]):
                self._keys[f"{name}#{i}"] = p
        self.longest_domain = max(map(len, self.domains), default=0)
        self.longest_relay = max(map(len, self.relays), default=0)
        self._name_cached = lru_cache(maxsize=16384)(self._name_for)
        self._day_keys: dict = {}

    # -- look-ups --------------------------------------------------------------------------
    def name_for(self, domain: str | None, relay: str | None = None, carrier: str | None = None) -> str | None:
        """The provider of a recipient domain (or address), else of the relay host, else of the carrier."""
        return self._name_cached(domain or "", relay or "", carrier or "")

    def _name_for(self, domain: str, relay: str, carrier: str) -> str | None:
        d = domain.strip().strip("<>").lower().rstrip(".")
        at = d.rfind("@")
        if at >= 0:
            d = d[at + 1:]
        hit = suffix_lookup(d, self.domains, self.longest_domain) if d else None
        if hit is None and relay:
            hit = suffix_lookup(host_of(relay), self.relays, self.longest_relay)
        if hit is None and carrier:
            hit = self.by_carrier.get(carrier)
        return hit

    def key_for(self, domain=None, relay=None, carrier=None, day=None) -> str | None:
        """The small cache key of the period that applies ("docomo#1"); None when no provider (or
        no period of it) applies."""
        name = self._name_cached(domain or "", relay or "", carrier or "")
        if name is None:
            return None
        hit = self._day_keys.get((name, day), _MISSING)
        if hit is _MISSING:
            if len(self._day_keys) > 4096:
                self._day_keys.clear()
            hit = self._day_keys[(name, day)] = self.key_of(name, day)
        return hit

    def key_of(self, name: str, day=None) -> str | None:
        """The key of the period covering `day` (None: no period does, the generic rules apply);
        without a day, the first open-ended period (today's behaviour)."""
        periods = self.periods[name]
        if day is not None:
            if isinstance(day, datetime):
                day = day.date()
            for i, p in enumerate(periods):
                if p.covers(day):
                    return f"{name}#{i}"
            return None
        for i, p in enumerate(periods):
            if p.until is None:
                return f"{name}#{i}"
        return f"{name}#{len(periods) - 1}"

    def period(self, key: str | None) -> Period:
        if key is None:
            return DEFAULT_PERIOD
        return self._keys.get(key, DEFAULT_PERIOD)

    def relay_provider_key(self, host: str) -> str | None:
        """Provider key from a relay host named in the reply text (no day: current behaviour)."""
        name = suffix_lookup(host, self.relays, self.longest_relay)
        return self.key_of(name) if name else None

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def build(cls, config_providers: Mapping[str, object] | None = None,
              carriers: CarrierTable | None = None) -> ProviderTable:
        """The package table, extended by the config's `[classify.providers.NAME]` entries.

        An entry naming a package provider adds its domains and relays; when it sets a behaviour
        key it adds a period that is tried before the package's (so an operator can override a
        provider, for a date range or for good). A new name adds a provider.
        """
        merged = {name: {"carrier": spec.get("carrier", ""), "domains": list(spec.get("domains", ())),
                         "relays": list(spec.get("relays", ())), "period": list(spec.get("period", ()))}
                  for name, spec in _package_providers().items()}
        for name, entry in (config_providers or {}).items():
            raw = _plain(entry)
            spec = merged.setdefault(name, {"carrier": "", "domains": [], "relays": [], "period": []})
            spec["domains"] += list(raw.get("domains", ()))
            spec["relays"] += list(raw.get("relays", ()))
            if raw.get("carrier"):
                spec["carrier"] = raw["carrier"]
            period = {k: raw[k] for k in _PERIOD_KEYS if raw.get(k)}
            behaviour = {k for k in period if k not in ("since", "until")}
            if behaviour or not spec["period"]:
                spec["period"].insert(0, period)
            elif period:
                raise ConfigError(f"[classify.providers.{name}]: since/until need a behaviour key "
                                  "(unknown_user_after_data or unknown_user_without_phase)")
        return cls(merged, carriers)


def _plain(entry) -> dict:
    if isinstance(entry, Mapping):
        return dict(entry)
    fields = getattr(entry, "__dataclass_fields__", None)
    if fields is None:
        raise ConfigError(f"[classify.providers] entries must be tables, got {entry!r}")
    return {name: getattr(entry, name) for name in fields}


@lru_cache(maxsize=1)
def _package_providers() -> dict[str, dict]:
    with open(_TABLE_FILE, "rb") as fh:
        return tomllib.load(fh)
