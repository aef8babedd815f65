"""Click commands `mailhygiene send …` (enqueue, daemon, status, preview) and `mailhygiene intake`.

Thin: options -> one library call in pipeline.sender -> printed result. Registered in
pipeline/cli.py; MailHygieneError becomes `Error: …` + exit 1 there.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

import click

from ..core.config import load_config
from ..core.errors import InputError

EX_TEMPFAIL = 75  # sysexits.h: the MTA keeps the mail and retries


def _cfg():
    obj = click.get_current_context().obj
    return obj.cfg if obj is not None and hasattr(obj, "cfg") else load_config()


def _read_text(path: str) -> str:
    data = Path(path).read_bytes()
    from ..sender.intake import decode_text

    return decode_text(data, None)


@click.group()
def send():
    """Send campaigns: enqueue, run the throttled daemon, watch the queue, preview encodings."""


@send.command("enqueue")
@click.option("--subject", required=True, help="Subject line (one line).")
@click.option("--body-file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The text to send (UTF-8, Shift_JIS or ISO-2022-JP).")
@click.option("--recipients", "recipients_csv", required=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV with an email/address column (or one address per line).")
@click.option("--name", default=None, help="A name for the job, shown by `send status`.")
def send_enqueue(subject, body_file, recipients_csv, name):
    """Queue one message for every recipient in a CSV (checked: syntax, duplicates, suppression)."""
    from ..sender.enqueue import enqueue, read_recipient_file

    report = enqueue(_cfg(), subject=subject, body=_read_text(body_file),
                     addresses=read_recipient_file(recipients_csv), name=name, source="cli")
    for line in report.lines():
        click.echo(line)


@send.command("daemon")
@click.option("--exit-when-done", is_flag=True, help="Stop once no recipient is queued, in flight or deferred.")
@click.option("--max-seconds", type=float, default=None, help="Stop (gracefully) after this long.")
@click.option("-v", "--verbose", is_flag=True, help="Log every message's result.")
def send_daemon(exit_when_done, max_seconds, verbose):
    """Send the queue: per-carrier throttle, routes, retries. SIGTERM stops gracefully."""
    from ..sender.daemon import run_daemon

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stats = run_daemon(_cfg(), exit_when_done=exit_when_done, max_seconds=max_seconds, install_signals=True)
    click.echo(stats.line())


@send.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def send_status(as_json):
    """Counts per job, carrier and state, and the current rate per carrier."""
    from ..sender.queue import STATES, Queue
    from ..sender.throttle import Throttle

    cfg = _cfg()
    q = Queue.for_config(cfg)
    counts = q.counts()
    throttle = Throttle.from_config(cfg["sender"], tz=cfg.tz)
    now = time.time()
    carriers = sorted({c for _, _, c, _, _ in counts})
    rates = {}
    for c in carriers:
        r = throttle.rate_for(c)
        window = max(r.interval, 60.0)
        n = q.recent_attempts(now - window).get(c, 0)
        rates[c] = {"attempts_last_window": n, "window_s": window,
                    "per_minute": round(n * 60.0 / window, 1), "limit_per_minute": round(r.count * 60.0 / r.interval, 1)}
    if as_json:
        click.echo(json.dumps({"counts": [dict(zip(("job_id", "name", "carrier", "state", "count"), row))
                                          for row in counts], "rates": rates}, ensure_ascii=False, indent=2))
        return
    if not counts:
        click.echo("the queue is empty")
        return
    table: dict[tuple, dict[str, int]] = defaultdict(dict)
    for job_id, name, carrier, state, n in counts:
        table[(job_id, name, carrier)][state] = n
    click.echo(f"{'job':>4} {'name':<16} {'carrier':<9} " + " ".join(f"{s:>8}" for s in STATES))
    for (job_id, name, carrier), states in table.items():
        click.echo(f"{job_id:>4} {name[:16]:<16} {carrier:<9} " + " ".join(f"{states.get(s, 0):>8}" for s in STATES))
    click.echo("")
    click.echo("rate per carrier (attempts started recently / configured limit):")
    for c, r in rates.items():
        click.echo(f"  {c:<9} {r['per_minute']:>8}/min  (limit {r['limit_per_minute']}/min)")


@send.command("preview")
@click.option("--carrier", required=True, help="docomo, au, softbank, ymobile, rakuten or other.")
@click.option("--subject", default=None, help="Subject (or use --job).")
@click.option("--body-file", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--job", "job_id", type=int, default=None, help="Preview a queued job instead.")
@click.option("--to", "to", default=None, help="Recipient shown in To: (default: a sample address).")
def send_preview(carrier, subject, body_file, job_id, to):
    """Show the exact bytes that would be sent to a carrier, then decode them back."""
    from ..sender.compose import MessageTemplate, charset_for, decode_message
    from ..sender.queue import Queue

    cfg = _cfg()
    s = cfg["sender"]
    if job_id is not None:
        job = Queue.for_config(cfg).job(job_id)
        subject, body = job.subject, job.body
    elif subject is None or body_file is None:
        raise InputError("give --subject and --body-file, or --job ID")
    else:
        body = _read_text(body_file)
    tpl = MessageTemplate(subject=subject, body=body, from_address=s["from_address"], from_name=s["from_name"],
                          charset=charset_for(s, carrier), unmappable=s["unmappable"])
    msg = tpl.render(to or f"sample@{_sample_domain(carrier)}")
    click.echo(f"# carrier {carrier}: charset {msg.charset} (configured {charset_for(s, carrier)})")
    for note in msg.notes:
        click.echo(f"# {note}")
    click.echo("# ---- bytes on the wire ----")
    click.echo(msg.data.decode("ascii", "backslashreplace").replace("\x1b", "<ESC>").replace("\r\n", "\n"), nl=False)
    click.echo("# ---- decoded back ----")
    d = decode_message(msg.data)
    click.echo(f"From: {d['from']}\nTo: {d['to']}\nSubject: {d['subject']}\n\n{d['body']}", nl=False)
    same = d["subject"] == subject and d["body"].rstrip("\n") == body.replace("\r\n", "\n").rstrip("\n")
    click.echo(f"# round trip: {'identical' if same else 'changed (see the notes above)'}")


def _sample_domain(carrier: str) -> str:
    return {"docomo": "docomo.ne.jp", "au": "au.com", "softbank": "i.softbank.jp", "ymobile": "ymobile.ne.jp",
            "rakuten": "rakumail.jp"}.get(carrier, "example.jp")


@click.command("intake")
@click.option("--maildir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Process the mails waiting in DIR/new instead of one mail on stdin.")
@click.option("--no-reply", is_flag=True, help="Do not mail results back to requesters.")
def intake(maildir, no_reply):
    """Turn a request mail (stdin, e.g. from `|mailhygiene intake`) into a send job.

    Refused or malformed requests are logged (data_dir/sender/intake.log) and exit 0, so the MTA
    never bounces anything to an unauthorised sender; an internal failure exits 75 (EX_TEMPFAIL)
    so the MTA keeps the mail and retries.
    """
    from ..sender.intake import process_maildir, process_request

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    cfg = _cfg()
    if maildir:
        for res in process_maildir(cfg, maildir, reply=not no_reply):
            click.echo(res.line())
        return
    try:
        res = process_request(cfg, sys.stdin.buffer.read(), reply=not no_reply)
    except Exception as exc:  # noqa: BLE001 - the MTA must retry, not bounce
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(res.line())
