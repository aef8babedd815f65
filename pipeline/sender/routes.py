"""Where each recipient's mail goes: recipient domain or carrier -> relay host:port.

Like sendmail's mailertable or qmail's smtproutes. Reads `sender.routes` and
`sender.default_relay` from the config; writes nothing. Called by the daemon per message and by
`send status`/`preview` to show the route.

Lookup order for `taro@sub.ezweb.ne.jp` with carrier `au`:
  1. the exact domain `sub.ezweb.ne.jp`
  2. `.suffix` keys, longest first: `.ezweb.ne.jp`, then `.ne.jp`, `.jp` (sub-domains only, as in
     mailertable: `.ezweb.ne.jp` does not match `ezweb.ne.jp` itself)
  3. the carrier name `au` (Y!mobile: `ymobile`, then its group's `softbank`)
  4. `default_relay` (the local MTA, 127.0.0.1:25 by default)
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError
from ..core.idn import IdnError, ascii_domain
from ..core.vocabulary import SENDER_CARRIERS


# A carrier without a route of its own uses its group's: Y!mobile mail goes through SoftBank's
# servers (ymx1.softbank.ne.jp), so SoftBank's 特定接続 relay serves Y!mobile domains too.
CARRIER_GROUPS = {"ymobile": "softbank"}


def shared_windows(routes: dict[str, str]) -> dict[str, str]:
    """member carrier -> its group, for the members whose mail reaches the group's servers: no
    carrier route of its own (its MX is the group's, or it uses the group's 特定接続 relay), or a
    route to the same relay as the group's. Their sends count in the group's throttle window
    (throttle.Throttle). A member routed to a relay of its own has a window of its own."""
    named = {k.strip().lower(): v for k, v in (routes or {}).items()}

    def relay(name):
        if name not in named:
            return None
        r = parse_relay(named[name], where=f"sender.routes.{name}")
        return r.host.lower(), r.port

    return {member: group for member, group in CARRIER_GROUPS.items()
            if member not in named or relay(member) == relay(group)}


@dataclass(frozen=True, order=True)
class Relay:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_relay(text: str, *, where: str = "relay") -> Relay:
    """`host`, `host:port`, `[host]:port` or `[v6::addr]:port` -> Relay (port 25 by default)."""
    t = str(text).strip()
    if not t:
        raise ConfigError(f"{where} is empty: give host:port, e.g. 127.0.0.1:25")
    host, port = t, "25"
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise ConfigError(f"{where} {text!r}: missing ']'")
        host, rest = t[1:end], t[end + 1 :]
        if rest.startswith(":"):
            port = rest[1:]
    elif t.count(":") == 1:
        host, port = t.split(":")
    if not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ConfigError(f"{where} {text!r} is not host:port, e.g. relay.example.jp:587")
    return Relay(host, int(port))


class Router:
    def __init__(self, routes: dict[str, str], default_relay: str):
        self.default = parse_relay(default_relay, where="sender.default_relay")
        self.exact: dict[str, Relay] = {}
        self.suffixes: list[tuple[str, Relay]] = []
        for key, value in (routes or {}).items():
            relay = parse_relay(value, where=f"sender.routes.{key}")
            k = key.strip().lower()
            if not k.isascii():   # a domain written in Unicode: keyed, like the recipients, in A-label form
                try:
                    k = ("." if k.startswith(".") else "") + ascii_domain(k.lstrip("."))
                except IdnError as exc:
                    raise ConfigError(f"sender.routes key {key!r}: {exc}") from None
            if k.startswith("."):
                self.suffixes.append((k, relay))
            elif "." not in k and k not in SENDER_CARRIERS:
                # a carrier name (no dot) mistyped, "docmo": its mail went to default_relay unnoticed
                raise ConfigError(f"sender.routes has unknown carrier {key!r}: a key is a domain (with a dot), a "
                                  f".suffix, or one of {', '.join(SENDER_CARRIERS)}")
            else:
                self.exact[k] = relay  # a domain, or a carrier name (carrier names have no dot)
        self.suffixes.sort(key=lambda kv: -len(kv[0]))

    @classmethod
    def from_config(cls, sender_cfg) -> "Router":
        if isinstance(sender_cfg, dict):
            return cls(sender_cfg.get("routes", {}), sender_cfg.get("default_relay", "127.0.0.1:25"))
        return cls(sender_cfg.routes, sender_cfg.default_relay)

    def relays(self) -> set[Relay]:
        """Every relay a message may be sent to."""
        return {self.default, *self.exact.values(), *(r for _, r in self.suffixes)}

    def route(self, domain: str, carrier: str | None = None) -> Relay:
        return self.lookup(domain, carrier) or self.default

    def lookup(self, domain: str, carrier: str | None = None) -> Relay | None:
        """The configured route, or None when the mail would go to default_relay."""
        d = (domain or "").lower()
        if not d.isascii():
            try:
                d = ascii_domain(d)
            except IdnError:
                pass
        if d in self.exact:
            return self.exact[d]
        for suffix, relay in self.suffixes:
            if d.endswith(suffix):
                return relay
        for name in (carrier, CARRIER_GROUPS.get(carrier or "")):
            if name and name in self.exact and "." not in name:
                return self.exact[name]
        return None
