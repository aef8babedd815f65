"""`mailhygiene classify`: show how one reply is classified (debugging the classifier)."""

from __future__ import annotations

import json

import click


@click.command("classify")
@click.argument("diagnostic")
@click.option("--phase", type=click.Choice(["connect", "helo", "mail", "rcpt", "data", "end_of_data", "quit"]),
              default=None, help="SMTP phase the reply answered (Postfix: 'in reply to … command').")
@click.option("--status", type=click.Choice(["deferred", "bounced", "expired", "sent", "undeliverable"]),
              default=None, help="Delivery status (default: from the reply code: 4xx deferred, else bounced).")
@click.option("--dsn", default=None, help="Enhanced status code as logged (dsn=), e.g. 5.0.0.")
@click.option("--domain", default=None, help="Recipient domain, to pick the carrier.")
@click.option("--mta", type=click.Choice(["postfix", "sendmail", "qmail"]), default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def classify_cmd(app, diagnostic, phase, status, dsn, domain, mta, as_json):
    """Show how a bounce text is classified (reason, whose fault, hard/soft, carrier).

    \b
    Examples:
      mailhygiene classify "550 Unknown user taro@docomo.ne.jp" --phase rcpt
      mailhygiene classify "550 Unknown user taro@docomo.ne.jp" --phase end_of_data
      mailhygiene classify "421 4.7.0 Too many connections" --domain au.com
    """
    from ..classify.carriers import CarrierTable
    from ..classify.classifier import classify, describe, parse_reply

    code, enhanced = parse_reply(diagnostic)
    if status is None:
        status = "deferred" if code and 400 <= code < 500 else "bounced"
    carrier = CarrierTable.from_config(app.cfg["carriers"]).carrier_for(domain) if domain else None
    c = classify(status=status, diagnostic=diagnostic, dsn=dsn or enhanced, reply_code=code,
                 smtp_phase=phase, carrier=carrier, mta=mta)
    result = {"reason": c.reason, "scope": c.scope, "hard": c.hard, "carrier": carrier,
              "status": status, "reply_code": code, "dsn": dsn or enhanced, "smtp_phase": phase}
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    for k in ("reason", "scope", "hard", "carrier", "status", "reply_code", "dsn", "smtp_phase"):
        click.echo(f"{k + ':':12} {result[k]}")
    click.echo(describe(c))
