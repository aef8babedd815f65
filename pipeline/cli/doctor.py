"""`mailhygiene doctor setup|message`: thin click layer over check_setup() / check_message().

Reads the `[doctor]` config section for defaults; prints a table or JSON; writes nothing.
Registered on the main group by pipeline/cli.py. Exit status: 0 when no check failed, 1 when one
did (a normal outcome, not an error); invalid input is `Error: …` and 1 via MailHygieneError.
"""

from __future__ import annotations

import json

import click

from ..core.config import load_config
from ..core.errors import ConfigError
from ..preflight.dns_checks import check_setup
from ..preflight.message_checks import CARRIERS, check_message
from ..preflight.results import failed, render_table


def _doctor_config(ctx: click.Context) -> dict:
    """The [doctor] section of the effective config (the main group's lazily loaded one)."""
    app = ctx.find_root().obj
    cfg = app.cfg if app is not None and hasattr(app, "cfg") else load_config()
    section = cfg["doctor"]
    for key in ("dnsbls", "domain_blocklists"):
        value = section[key]
        if not isinstance(value, list) or not all(isinstance(z, str) and z.strip() for z in value):
            raise ConfigError(f'doctor.{key} must be a list of zone names, e.g. ["zen.spamhaus.org"]')
    if not isinstance(section["resolver"], str):
        raise ConfigError('doctor.resolver must be an IP address in quotes, or "" for the system resolver')
    return section


def _emit(results, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        click.echo(render_table(results), nl=False)
    if failed(results):
        click.get_current_context().exit(1)


@click.group()
def doctor():
    """Preflight checks: the sending setup (DNS) and a message (.eml).

    \b
    Exit status 0 when nothing fails, 1 when a check fails (or on an error).
      mailhygiene doctor setup --domain example.jp --ip 192.0.2.10 --helo mail.example.jp
      mailhygiene doctor message campaign.eml --carrier au
    """


@doctor.command("setup")
@click.option("--domain", required=True, help="Envelope sender (MAIL FROM) domain, e.g. example.jp.")
@click.option("--ip", required=True, help="The IP address the mail leaves from.")
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
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
@click.pass_context
def setup_cmd(ctx, domain, ip, helo, dkim_selector, resolver, port, dnsbls, domain_lists, no_blocklists,
              timeout, as_json):
    """Check reverse DNS, HELO, MX, SPF, DMARC, DKIM and block lists for DOMAIN sending from IP."""
    conf = _doctor_config(ctx)
    results = check_setup(
        domain, ip, helo=helo, dkim_selector=dkim_selector,
        resolver=conf["resolver"] if resolver is None else resolver,
        port=conf["resolver_port"] if port is None else port,
        dnsbls=() if no_blocklists else (list(dnsbls) or conf["dnsbls"]),
        domain_lists=() if no_blocklists else (list(domain_lists) or conf["domain_blocklists"]),
        timeout=conf["timeout"] if timeout is None else timeout,
    )
    _emit(results, as_json)


@doctor.command("message")
@click.argument("file", metavar="FILE.eml")
@click.option("--carrier", type=click.Choice(CARRIERS, case_sensitive=False), default=None,
              help="Judge the size against this carrier only (default: all).")
@click.option("--no-spamassassin", is_flag=True, help="Skip the SpamAssassin score.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
@click.pass_context
def message_cmd(ctx, file, carrier, no_spamassassin, as_json):
    """Lint FILE.eml: headers, line length, ISO-2022-JP text, carrier limits, SpamAssassin score."""
    conf = _doctor_config(ctx)
    results = check_message(
        file, carrier=carrier, spamassassin=not no_spamassassin,
        spamassassin_program=conf["spamassassin"], spamassassin_timeout=conf["spamassassin_timeout"],
    )
    _emit(results, as_json)
