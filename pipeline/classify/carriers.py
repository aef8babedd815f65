"""Which Japanese mobile carrier an address belongs to: the carrier table as data + carrier_for().

Reads `pipeline/classify/data/carriers.toml` (package data) and the config section `[carriers]`
(carrier name -> extra domains). Writes nothing. Called by ingest once per event (cached) and by
reports/sender code that groups or throttles by carrier.

Lookup order (carriers.md): the recipient domain first (exact or any parent domain), then, when the
domain is unknown, the host name of the MX that answered (`relay=`), because a customer can keep a
carrier address after leaving the carrier and sub-brands share the parent's servers.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

from ..core.errors import ConfigError
from ..core.vocabulary import CARRIERS

OTHER = "other"

_TABLE_FILE = Path(__file__).with_name("data") / "carriers.toml"
_BRACKET = re.compile(r"\[([a-z0-9-]+)\]")


def expand_pattern(entry: str) -> list[str]:
    """`[dh].vodafone.ne.jp` -> ['d.vodafone.ne.jp', 'h.vodafone.ne.jp']; `*.x.jp` -> ['x.jp'].

    A leading `*.` is dropped because every entry already covers its subdomains.
    """
    entry = entry.strip().lower().rstrip(".")
    if entry.startswith("*."):
        entry = entry[2:]
    m = _BRACKET.search(entry)
    if not m:
        return [entry] if entry else []
    out: list[str] = []
    for ch in m.group(1):
        out.extend(expand_pattern(entry[: m.start()] + ch + entry[m.end():]))
    return out


def host_of(relay: str) -> str:
    """`mfsmax.docomo.ne.jp[1.2.3.4]:25` / `mx. [1.2.3.4]` / `msmx.au.com` -> bare lower-case host."""
    host = relay.strip()
    cut = host.find("[")
    if cut >= 0:
        host = host[:cut]
    host = host.strip().lower().rstrip(".")
    if ":" in host and host.count(":") == 1:  # host:port without brackets
        host = host.split(":", 1)[0]
    return host


def suffix_lookup(name: str, table: Mapping[str, str], longest: int | None = None) -> str | None:
    """Longest suffix of `name` (at a label boundary) present in `table`.

    `longest`: the length of the table's longest key, when the caller knows it: the suffixes
    longer than that are skipped without a look-up, so a name of thousands of labels (a hostile
    bounce's recipient) costs time linear in its length, not quadratic (a suffix a label shorter
    at a time: 58 s for a 1 MB name)."""
    if longest is not None and len(name) > longest:
        dot = name.find(".", len(name) - longest - 1)  # the first suffix after it fits
        if dot < 0:
            return None
        name = name[dot + 1:]
    while name:
        hit = table.get(name)
        if hit is not None:
            return hit
        dot = name.find(".")
        if dot < 0:
            return None
        name = name[dot + 1:]
    return None


class CarrierTable:
    """Domain and relay-host suffix tables for the carriers in CARRIERS."""

    def __init__(self, domains: Mapping[str, Iterable[str]], relays: Mapping[str, Iterable[str]] | None = None):
        self.domains: dict[str, str] = {}
        self.relays: dict[str, str] = {}
        for carrier, entries in domains.items():
            self._add(self.domains, carrier, entries)
        for carrier, entries in (relays or {}).items():
            self._add(self.relays, carrier, entries)
        self.longest_domain = max(map(len, self.domains), default=0)
        self.longest_relay = max(map(len, self.relays), default=0)
        self._cached = lru_cache(maxsize=65536)(self._lookup)

    @staticmethod
    def _add(table: dict[str, str], carrier: str, entries: Iterable[str]) -> None:
        if carrier not in CARRIERS:
            raise ConfigError(
                f"unknown carrier {carrier!r} in [carriers]: use one of {', '.join(CARRIERS)}"
            )
        if isinstance(entries, str):
            entries = [entries]
        for entry in entries:
            if not isinstance(entry, str):
                raise ConfigError(f"[carriers] {carrier}: domains must be strings (got {entry!r})")
            for domain in expand_pattern(entry):
                table[domain] = carrier

    @classmethod
    def default(cls) -> CarrierTable:
        """The package table (pipeline/classify/data/carriers.toml)."""
        return cls(*_package_table())

    @classmethod
    def from_config(cls, overrides: Mapping[str, list[str]] | None) -> CarrierTable:
        """The package table plus the config's `[carriers]` extra domains (carrier -> domains)."""
        domains, relays = _package_table()
        merged = {name: list(entries) for name, entries in domains.items()}
        for carrier, extra in (overrides or {}).items():
            if isinstance(extra, str):
                extra = [extra]
            if not isinstance(extra, (list, tuple)):
                raise ConfigError(
                    f"[carriers] {carrier} must be a list of domains, e.g. {carrier} = [\"example.jp\"]"
                )
            merged.setdefault(carrier, []).extend(extra)
        return cls(merged, relays)

    def carrier_for(self, domain: str | None, relay: str | None = None) -> str:
        """Carrier name for a recipient domain (or address), else by relay host, else "other"."""
        return self._cached(domain or "", relay or "")

    def _lookup(self, domain: str, relay: str) -> str:
        d = domain.strip().strip("<>").lower().rstrip(".")
        at = d.rfind("@")
        if at >= 0:
            d = d[at + 1:]
        hit = suffix_lookup(d, self.domains, self.longest_domain) if d else None
        if hit is None and relay:
            hit = suffix_lookup(host_of(relay), self.relays, self.longest_relay)
        return hit or OTHER


@lru_cache(maxsize=1)
def _package_table() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    with open(_TABLE_FILE, "rb") as fh:
        raw = tomllib.load(fh)
    domains = {name: list(section.get("domains", [])) for name, section in raw.items()}
    relays = {name: list(section.get("relays", [])) for name, section in raw.items()}
    return domains, relays


@lru_cache(maxsize=1)
def size_limits() -> dict[str, tuple[int, str]]:
    """carrier -> (the largest message it takes, raw bytes on the wire; where that comes from),
    from the package table (`max_message_bytes`, `max_message_note`): the doctor's size check
    and the sender's refusal of a campaign too large for a carrier read the same figures."""
    with open(_TABLE_FILE, "rb") as fh:
        raw = tomllib.load(fh)
    return {name: (int(section["max_message_bytes"]), str(section.get("max_message_note", "")))
            for name, section in raw.items() if "max_message_bytes" in section}


_DEFAULT: CarrierTable | None = None


def default_table() -> CarrierTable:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = CarrierTable.default()
    return _DEFAULT


def carrier_for_domain(domain: str | None, relay: str | None = None) -> str:
    """carrier_for() on the package table (no config overrides)."""
    return default_table().carrier_for(domain, relay)
