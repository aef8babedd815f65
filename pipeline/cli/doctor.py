"""`mailhygiene doctor setup|relays|message`: thin click layer over check_setup() / check_relays() /
check_message().

Reads the typed `[doctor]` settings (cfg.doctor) and applies the command-line overrides to a copy;
prints a table or JSON; writes nothing. Registered lazily on the main group (pipeline/cli/__init__).

Exit status (also in `doctor --help` and docs/doctor.md):
  0  every check passed, or only warnings without --strict
  1  error: nothing was checked (bad input, unreadable file, resolver not answering); one `Error:` line
  2  usage error (unknown option, unknown --carrier), from click
  3  at least one check FAILED
  4  no failure, but warnings and --strict (or doctor.strict = true)
"""

from __future__ import annotations

import dataclasses
import json
import math

import click

from ..core.config import DoctorSettings, load_config
from ..core.errors import ConfigError
from ..preflight.message_checks import CARRIERS, check_message
from ..preflight.results import render_table

EXIT_OK = 0
EXIT_FAILED = 3
EXIT_STRICT_WARN = 4


def _doctor_settings(ctx: click.Context) -> DoctorSettings:
    """cfg.doctor of the effective config (the main group's lazily loaded one)."""
    app = ctx.find_root().obj
    cfg = app.cfg if app is not None and hasattr(app, "cfg") else load_config()
    return cfg.doctor


def exit_status(results, strict: bool) -> int:
    if any(r.status == "fail" for r in results):
        return EXIT_FAILED
    if strict and any(r.status == "warn" for r in results):
        return EXIT_STRICT_WARN
    return EXIT_OK


def _emit(results, as_json: bool, strict: bool) -> None:
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        text = render_table(results)
        status = exit_status(results, strict)
        if status == EXIT_STRICT_WARN:
            text += "--strict: warnings count as failures\n"
        click.echo(text, nl=False)
    click.get_current_context().exit(exit_status(results, strict))


def _check_seconds(value, option: str, low: float, high: float):
    if value is not None and (not math.isfinite(value) or not low <= value <= high):
        raise ConfigError(f"{option} must be a number of seconds from {low:g} to {high:g} (got {value!r})")
    return value


EXIT_HELP = """\b
Exit status:
  0  all checks passed (warnings allowed unless --strict)
  1  error: nothing checked (bad input, unreadable file, resolver not answering)
  2  usage error (unknown option or --carrier)
  3  at least one check failed
  4  warnings only, with --strict (or doctor.strict = true)"""


@click.group(epilog=EXIT_HELP)
def doctor():
    """Preflight checks: the sending setup (DNS), the relays (STARTTLS, AUTH) and a message (.eml).

    \b
      mailhygiene doctor setup --domain example.jp --ip 203.0.113.10 --helo mail.example.jp
      mailhygiene doctor relays
      mailhygiene doctor message campaign.eml --carrier au --strict
    """


@doctor.command("setup", epilog=EXIT_HELP)
@click.option("--domain", required=True, help="Envelope sender (MAIL FROM) domain, e.g. example.jp.")
@click.option("--ip", required=True, help="The public IP address the mail leaves from.")
@click.option("--helo", default=None, metavar="HOST", help="HELO/EHLO name the MTA announces (checked to resolve to IP).")
@click.option("--dkim-selector", default=None, metavar="S", help="DKIM selector (s= tag) whose key to check.")
@click.option("--resolver", default=None, metavar="IP",
              help='DNS server to ask (config: doctor.resolver; "" = system resolver).')
@click.option("--port", type=int, default=None, help="Port of that DNS server (config: doctor.resolver_port).")
@click.option("--dnsbl", "dnsbls", multiple=True, metavar="ZONE",
              help="IP block list zone; repeat for several; replaces doctor.dnsbls.")
@click.option("--domain-list", "domain_lists", multiple=True, metavar="ZONE",
              help="Domain block list zone; repeat for several; replaces doctor.domain_blocklists.")
@click.option("--no-blocklists", is_flag=True, help="Skip the IP and domain block lists.")
@click.option("--timeout", type=float, default=None, help="Seconds per DNS query (config: doctor.timeout).")
@click.option("--probe-timeout", type=float, default=None,
              help="Seconds the first probe of the resolver may take (config: doctor.probe_timeout).")
@click.option("--strict", is_flag=True, default=None, help="Warnings fail too (exit status 4).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
@click.pass_context
def setup_cmd(ctx, domain, ip, helo, dkim_selector, resolver, port, dnsbls, domain_lists, no_blocklists,
              timeout, probe_timeout, strict, as_json):
    """Check the IP, reverse DNS, HELO, MX, SPF, DMARC, DKIM and block lists for DOMAIN sending from IP.

    A resolver that does not answer one quick probe, answers "no such name" even for the root, or
    says a name that always exists (a.root-servers.net) does not (a captive, blackholing or
    offline split-horizon resolver) stops the command (exit status 1) before any check: its "no
    such name" would be no verdict on DOMAIN. Name a resolver that reaches the internet with
    --resolver IP.

    \b
    Examples:
      mailhygiene doctor setup --domain mail.example.jp --ip 203.0.113.25 --helo mx1.mail.example.jp
      mailhygiene doctor setup --domain mail.example.jp --ip 203.0.113.25 --dkim-selector s1 --resolver 127.0.0.1
      mailhygiene doctor setup --domain mail.example.jp --ip 203.0.113.25 --no-blocklists --json
    """
    from ..preflight.dns_checks import check_setup  # here: `doctor --help` loads no dnspython
    settings = _doctor_settings(ctx)
    overrides = {}
    if resolver is not None:
        overrides["resolver"] = resolver.strip()
    if port is not None:
        overrides["resolver_port"] = port
    if timeout is not None:
        overrides["timeout"] = _check_seconds(timeout, "--timeout", 0.1, 120)
    if probe_timeout is not None:
        overrides["probe_timeout"] = _check_seconds(probe_timeout, "--probe-timeout", 0.1, 30)
    if no_blocklists:
        overrides["dnsbls"], overrides["domain_blocklists"] = (), ()
    else:
        if dnsbls:
            overrides["dnsbls"] = tuple(dnsbls)
        if domain_lists:
            overrides["domain_blocklists"] = tuple(domain_lists)
    settings = dataclasses.replace(settings, **overrides)
    results = check_setup(domain, ip, settings, helo=helo, dkim_selector=dkim_selector)
    _emit(results, as_json, settings.strict if strict is None else strict)


@doctor.command("relays", epilog=EXIT_HELP)
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per relay connection and reply.")
@click.option("--login", is_flag=True,
              help="Also authenticate with each relay that has a username (once, over TLS only).")
@click.option("--strict", is_flag=True, default=None, help="Warnings fail too (exit status 4).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
@click.pass_context
def relays_cmd(ctx, timeout, login, strict, as_json):
    """Check each relay of [sender.relays] (and, with sender.tls = "encrypt"/"verify", every relay
    used): connect, EHLO, STARTTLS per its tls mode and CA file, AUTH offered when it has a username.

    The password is never sent without --login, and never in plain text. Nothing is mailed.

    \b
    Examples:
      mailhygiene doctor relays
      mailhygiene doctor relays --login --json
    """
    from ..preflight.results import CheckResult
    from ..sender.relaycheck import check_relays

    app = ctx.find_root().obj
    cfg = app.cfg if app is not None and hasattr(app, "cfg") else load_config()
    _check_seconds(timeout, "--timeout", 0.1, 120)
    results = [CheckResult(**dataclasses.asdict(r)) for r in check_relays(cfg, timeout=timeout, login=login)]
    _emit(results, as_json, cfg.doctor.strict if strict is None else strict)


@doctor.command("message", epilog=EXIT_HELP)
@click.argument("file", metavar="FILE.eml")
@click.option("--carrier", type=click.Choice(CARRIERS, case_sensitive=False), default=None,
              help="Judge the size against this carrier only (default: all).")
@click.option("--transactional", is_flag=True,
              help="Not advertising (an order confirmation, a password reset): skip the "
                   "特定電子メール法 display checks.")
@click.option("--no-spamassassin", is_flag=True, help="Skip the SpamAssassin score.")
@click.option("--strict", is_flag=True, default=None, help="Warnings fail too (exit status 4).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
@click.pass_context
def message_cmd(ctx, file, carrier, transactional, no_spamassassin, strict, as_json):
    """Lint FILE.eml: headers, line length, Japanese text, carrier limits, the display duties of
    the 特定電子メール法 (advertising mail), a Japanese spam-phrase score and SpamAssassin's score.

    \b
    Examples:
      mailhygiene doctor message campaign.eml
      mailhygiene doctor message receipt.eml --transactional --carrier docomo
      mailhygiene doctor message campaign.eml --no-spamassassin --json
    """
    settings = _doctor_settings(ctx)
    results = check_message(file, settings, carrier=carrier, spamassassin=not no_spamassassin,
                            advertising=not transactional)
    _emit(results, as_json, settings.strict if strict is None else strict)
