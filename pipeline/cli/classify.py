"""`mailhygiene classify`: show how one reply is classified, and with --explain which rule decided."""

from __future__ import annotations

import json
import re

import click

from .terminal import DAY

# (from where a run of address characters starts: tried inside a run, a long one costs quadratic time)
_ADDRESS = re.compile(r"(?<![A-Za-z0-9._%+\-\"])[A-Za-z0-9._%+\-\"]+@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")


@click.command("classify")
@click.argument("diagnostic")
@click.option("--phase", type=click.Choice(["connect", "helo", "mail", "rcpt", "data", "end_of_data", "quit"]),
              default=None, help="SMTP phase the reply answered (Postfix: 'in reply to … command').")
@click.option("--status", type=click.Choice(["deferred", "bounced", "expired", "sent", "undeliverable"]),
              default=None, help="Delivery status (default: from the reply code: 4xx deferred, else bounced).")
@click.option("--dsn", default=None, help="Enhanced status code as logged (dsn=), e.g. 5.0.0.")
@click.option("--domain", default=None,
              help="Recipient domain (default: the domain of the first address in the text).")
@click.option("--relay", default=None, help="The MX that answered (relay=), e.g. mfsmax.docomo.ne.jp[1.2.3.4]:25.")
@click.option("--day", type=DAY, default=None,
              help="The event's date (YYYY-MM-DD), for provider behaviour that changed on a date.")
@click.option("--mta", type=click.Choice(["postfix", "sendmail", "qmail"]), default=None,
              help="The MTA that logged the reply (sendmail's own words and DSNs are read its way).")
@click.option("--explain", is_flag=True, help="Show which rule decided, on what evidence.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result as JSON: reason, scope, hard, carrier, domain, status, reply_code, dsn, smtp_phase.")
@click.pass_obj
def classify_cmd(app, diagnostic, phase, status, dsn, domain, relay, day, mta, explain, as_json):
    """Show how a bounce text is classified (reason, whose fault, hard/soft, carrier).

    \b
    Examples:
      mailhygiene classify "550 Unknown user taro@docomo.ne.jp" --phase rcpt
      mailhygiene classify "550 Unknown user taro@docomo.ne.jp" --phase end_of_data --explain
      mailhygiene classify "421 4.7.0 Too many connections" --domain au.com
    """
    from ..classify.carriers import CarrierTable
    from ..classify.classifier import describe, explain as explain_reply, parse_reply

    cfg = app.cfg  # also installs the config's [classify] phrases and providers
    code, enhanced = parse_reply(diagnostic)
    if status is None:
        status = "deferred" if code and 400 <= code < 500 else "bounced"
    if domain is None:
        m = _ADDRESS.search(diagnostic)
        domain = m.group(1).lower() if m else None
    carrier = CarrierTable.from_config(cfg.carriers).carrier_for(domain, relay) if (domain or relay) else None
    c, decision, ctx = explain_reply(status=status, diagnostic=diagnostic, dsn=dsn or enhanced, reply_code=code,
                                     smtp_phase=phase, carrier=carrier, mta=mta, recipient_domain=domain,
                                     relay=relay, day=day)
    provider = ctx.provider.label() if ctx.provider is not None else "default"
    result = {"reason": c.reason, "scope": c.scope, "hard": c.hard, "carrier": carrier, "domain": domain,
              "status": status, "reply_code": code, "dsn": dsn or enhanced, "smtp_phase": ctx.phase}
    if explain:
        result.update({"rule": decision.rule, "evidence": decision.evidence, "notes": list(decision.notes),
                       "provider": provider, "normalised": ctx.text})
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    for k, v in result.items():
        if k == "notes":
            for note in v:
                click.echo(f"{'note:':12} {note}")
            continue
        click.echo(f"{k + ':':12} {v}")
    click.echo(describe(c))
