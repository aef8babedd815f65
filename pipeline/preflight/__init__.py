"""Preflight ("doctor") checks: is the sending setup sound, and is this message fit to send?

Library entry points (the `mailhygiene doctor` commands and notebooks call these):
  check_setup(domain, ip, helo=None, dkim_selector=None, resolver=None, port=53,
              dnsbls=..., domain_lists=..., timeout=...)       -> list[CheckResult]
      reverse DNS (forward-confirmed), HELO, MX, SPF (pyspf + 10-lookup count), DMARC, DKIM,
      IP and domain block lists, all through one configurable resolver.
  check_message(path_or_bytes, carrier=None, spamassassin=True) -> list[CheckResult]
      headers, 8-bit headers, line length, ISO-2022-JP coverage, CP932 look-alikes,
      carrier size limits, recipients per message, local SpamAssassin score.
  render_table(results), failed(results)

Reads DNS and the message file; writes nothing. See docs/doctor.md.
"""

from .dns_checks import check_setup
from .message_checks import check_message
from .results import CheckResult, failed, render_table, summary

__all__ = ["CheckResult", "check_message", "check_setup", "failed", "render_table", "summary"]
