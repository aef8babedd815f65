"""Preflight ("doctor") checks: is the sending setup sound, and is this message fit to send?

Library entry points (the `mailhygiene doctor` commands and notebooks call these; both take the
typed `cfg.doctor` settings, DoctorSettings() when None):
  check_setup(domain, ip, settings=None, *, helo=None, dkim_selector=None) -> list[CheckResult]
      one probe of the resolver first (ResolverUnusable when it does not answer), then the IP
      itself (public?), reverse DNS (forward-confirmed), HELO, MX, SPF (pyspf + 10-lookup count),
      DMARC, DKIM, IP and domain block lists (each trusted only after its RFC 5782 test entries).
  check_message(path_or_bytes, settings=None, *, carrier=None, spamassassin=True, advertising=True)
      headers, 8-bit headers, line length, ISO-2022-JP coverage, CP932 look-alikes, carrier size
      limits, recipients per message, the 特定電子メール法 display duties and one-click List-Unsubscribe (advertising mail),
      the local SpamAssassin score and a Japanese spam-phrase score beside it.
  render_table(results), failed(results), summary(results)

Modules:
  resolver       the configured resolver, the probe, the pyspf hook
  dns_checks     check_setup and the DNS checks; spf_check: SPF record, lookups, evaluation
  message_checks check_message and the format checks
  body           decoded text of each part as the reader sees it (HTML rendered, links kept)
  ad_law         特定電子メール法 第4条 display duties
  ja_spam        Japanese spam-phrase score (data/ja_spam_phrases.toml)
  spamassassin   `spamassassin -L -t` and its report
  results        CheckResult, the table; jis: re-exports of core.jptext for tests

Reads DNS, the message file and the phrase file; writes nothing. (`doctor relays` is the sender's:
pipeline/sender/relaycheck.py.) See docs/doctor.md.
"""

from .message_checks import check_message
from .results import CheckResult, failed, render_table, summary


def __getattr__(name: str):
    """check_setup and ResolverUnusable on first use: they bring dnspython, which `doctor --help`
    and `doctor message` do not need."""
    if name == "check_setup":
        from .dns_checks import check_setup

        return check_setup
    if name == "ResolverUnusable":
        from .resolver import ResolverUnusable

        return ResolverUnusable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CheckResult", "ResolverUnusable", "check_message", "check_setup", "failed", "render_table",
           "summary"]
