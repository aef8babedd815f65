"""Click commands `mailhygiene send …` (enqueue, daemon, status, preview) and `mailhygiene intake`.

Thin: options -> one library call in pipeline.sender -> printed result. Registered in
pipeline/cli.py; MailHygieneError becomes `Error: …` + exit 1 there.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import NoReturn

import click

from ..core.config import load_config
from ..core.errors import InputError, MailHygieneError
from ..sender.queue import MAX_JOB_ID
from . import printable

EX_TEMPFAIL = 75  # sysexits.h: the MTA keeps the mail and retries
JOB_ID = click.IntRange(1, MAX_JOB_ID)  # a job id SQLite can hold; others are usage errors


def _cfg(reads_data: bool = False):
    """The config; `reads_data`: a read-only look at the queue, which a foreign data dir refuses
    (AppContext.read_cfg: "holds no mailhygiene data") instead of showing an empty queue."""
    obj = click.get_current_context().obj
    if obj is not None and hasattr(obj, "read_cfg"):
        return obj.read_cfg() if reads_data else obj.cfg
    return obj.cfg if obj is not None and hasattr(obj, "cfg") else load_config()


BODY_MAX_BYTES = 64 << 20  # a message text larger than this is the wrong file (a log, /dev/zero)


def _read_text(path: str, data: bytes | None = None) -> str:
    """The message text in the file at `path`, or in `data` already read (standard input)."""
    from ..core.fsutil import read_bounded
    from ..sender.intake import decode_text

    too_large = f"{path} is larger than {BODY_MAX_BYTES >> 20} MiB: not a message text (the wrong file?)"
    if data is None:
        data = read_bounded(path, BODY_MAX_BYTES, name=path, too_large=too_large)
    elif len(data) > BODY_MAX_BYTES:
        raise InputError(too_large)
    return decode_text(data, None)


def _stdin_for(body_file: str, recipients: str) -> bytes | None:
    """Standard input, when one of the two files is `-` (read once, bounded like a file)."""
    if body_file == "-" and recipients == "-":
        raise InputError("--body-file and --recipients cannot both be - (standard input): give one of them as a file")
    if "-" not in (body_file, recipients):
        return None
    from ..suppression.address_file import MAX_BYTES

    return sys.stdin.buffer.read(max(BODY_MAX_BYTES, MAX_BYTES) + 1)


@click.group()
def send():
    """Send campaigns: enqueue, run the throttled daemon, watch the queue, preview encodings."""


@send.command("enqueue")
@click.option("--subject", required=True, help="Subject line (one line).")
@click.option("--body-file", required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="The text to send (UTF-8, Shift_JIS or ISO-2022-JP); - reads standard input.")
@click.option("--recipients", "recipients_csv", required=True,
              type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="CSV (UTF-8 or Excel's Shift_JIS, comma- or tab-separated) with an email / メールアドレス "
                   "column, or one address per line; - reads standard input.")
@click.option("--name", default=None, help="A name for the job, shown by `send list` and `send status`.")
def send_enqueue(subject, body_file, recipients_csv, name):
    """Queue one message for every recipient in a CSV (checked: syntax, duplicates, suppression).

    Nothing is queued when the list holds no valid recipient, the suppression list cannot be read,
    or the message is too large for a carrier; otherwise the report says what was queued and what
    was skipped (suppressed, duplicates, invalid with examples), and per carrier every character
    the carrier's charset changes. Then `send daemon` sends it; `send preview` shows the bytes first.

    \b
      mailhygiene send enqueue --subject "冬のご案内" --body-file body.txt --recipients list.csv --name winter
      crm-export | mailhygiene send enqueue --subject "冬のご案内" --body-file body.txt --recipients -
    """
    from ..sender.enqueue import enqueue, read_recipient_file

    stdin = _stdin_for(body_file, recipients_csv)
    body = _read_text("standard input" if body_file == "-" else body_file, stdin if body_file == "-" else None)
    addresses = read_recipient_file("standard input" if recipients_csv == "-" else recipients_csv,
                                    stdin if recipients_csv == "-" else None)
    report = enqueue(_cfg(), subject=subject, body=body, addresses=addresses, name=name, source="cli")
    for line in report.lines():
        click.echo(line)


@send.command("daemon")
@click.option("--exit-when-done", is_flag=True, help="Stop once no recipient is queued, in flight or deferred.")
@click.option("--max-seconds", type=float, default=None, help="Stop (gracefully) after this long.")
@click.option("-v", "--verbose", is_flag=True, help="Log every message's result.")
def send_daemon(exit_when_done, max_seconds, verbose):
    """Send the queue: per-carrier throttle, routes, retries. SIGTERM stops gracefully.

    Runs until stopped (the systemd unit contrib/mailhygiene-send.service runs it so); SIGTERM,
    SIGINT and SIGHUP let the messages in flight finish first (SIGHUP then exits 129, for a restart
    with the config read anew).

    \b
      mailhygiene send daemon                      # as the service does
      mailhygiene send daemon --exit-when-done -v  # one pass over the queue, every result logged
    """
    from ..sender.daemon import run_daemon

    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stats = run_daemon(_cfg(), exit_when_done=exit_when_done, max_seconds=max_seconds, install_signals=True)
    click.echo(stats.line())
    if stats.stopped_by == signal.SIGHUP:  # a restart asked for: not a clean stop (Restart=on-failure)
        click.echo("send daemon: stopped on SIGHUP after the messages in flight (exit 129: systemd restarts "
                   "it, with the config read anew)", err=True)
        sys.exit(128 + signal.SIGHUP)


@send.command("status")
@click.option("--job", "job_id", type=JOB_ID, default=None, help="One job: every recipient with its last reply.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def send_status(job_id, as_json):
    """Counts per job, carrier and state, the current rate per carrier; with --job every recipient.

    Also every relay paused because it could not be used (refused, unreachable, a greeting or our
    AUTH/TLS refused), with the seconds left and its failures in a row (--json: relay_pauses,
    relay_failures); its messages wait and are sent when the pause ends.

    \b
      mailhygiene send status
      mailhygiene send status --job 12 --json
    """
    from ..sender.queue import STATES, Queue
    from ..sender.throttle import RELAY_PREFIX, Throttle

    cfg = _cfg(reads_data=True)
    q = Queue.for_config(cfg, read_only=True)
    if job_id is not None:
        q.job(job_id)  # InputError for an unknown job
    counts = q.counts(job_id)
    throttle = Throttle.from_config(cfg.sender, tz=cfg.tz)
    states = q.throttle_states()
    now = time.time()
    carriers = sorted({c for _, _, c, _, _ in counts})
    rates = {}
    for c in carriers:
        r = throttle.rate_for(c)
        window = max(r.interval, 60.0)
        n = q.recent_attempts(now - window).get(c, 0)
        paused_until, factor, factor_at = states.get(c, (0.0, 1.0, 0.0))
        throttle.restore([], {c: (paused_until, factor, factor_at)})
        rates[c] = {"attempts_last_window": n, "window_s": window,
                    "per_minute": round(n * 60.0 / window, 1),
                    "limit_per_minute": round(throttle.effective_count(c, now) * 60.0 / r.interval, 1),
                    "configured_per_minute": round(r.count * 60.0 / r.interval, 1),
                    "paused_for_s": round(max(0.0, paused_until - now), 1)}
    deferrals = q.last_deferrals()
    for c in carriers:
        rates[c]["last_deferral"] = deferrals.get(c)
    # relays paused because they could not be used (refused, unreachable, AUTH/TLS): throttle.pause_relay
    strikes = q.relay_strikes()
    relay_pauses = {key[len(RELAY_PREFIX):]: round(until - now, 1) for key, (until, _, _) in sorted(states.items())
                    if key.startswith(RELAY_PREFIX) and until > now}
    relay_failures = {key[len(RELAY_PREFIX):]: n for key, n in sorted(strikes.items()) if key.startswith(RELAY_PREFIX)}
    rows = q.rows(job_id) if job_id is not None else None
    if as_json:
        out = {"counts": [dict(zip(("job_id", "name", "carrier", "state", "count"), row)) for row in counts],
               "rates": rates, "relay_pauses": relay_pauses, "relay_failures": relay_failures}
        if rows is not None:
            out["job"] = {k: v for k, v in vars(q.job(job_id)).items() if k != "body"}
            out["recipients"] = rows
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if not counts:
        click.echo("the queue is empty" if job_id is None else f"job {job_id} has no recipients")
        return
    table: dict[tuple, dict[str, int]] = defaultdict(dict)
    for jid, name, carrier, state, n in counts:
        table[(jid, name, carrier)][state] = n
    click.echo(f"{'job':>4} {'name':<16} {'carrier':<9} " + " ".join(f"{s:>8}" for s in STATES))
    for (jid, name, carrier), st in table.items():
        click.echo(f"{jid:>4} {printable(name[:16]):<16} {carrier:<9} " + " ".join(f"{st.get(s, 0):>8}" for s in STATES))
    click.echo("")
    click.echo("rate per carrier (attempts started recently / current limit):")
    for c, r in rates.items():
        extra = f", paused {r['paused_for_s']} s more" if r["paused_for_s"] else ""
        reduced = (f", reduced from {r['configured_per_minute']}/min after a rate-limit reply"
                   if r["limit_per_minute"] < r["configured_per_minute"] else "")
        click.echo(f"  {c:<9} {r['per_minute']:>8}/min  (limit {r['limit_per_minute']}/min{reduced}{extra})")
        last = r["last_deferral"]
        if last:   # why the carrier waits: a relay refusing our AUTH or TLS, a rate limit ...
            reply = f"{last['reply_code'] or ''} {last['reply'] or ''}".strip()
            click.echo(f"  {'':<9} last deferral via {printable(last['relay'] or '-')}: {printable(reply[:160])}")
    for relay, seconds in relay_pauses.items():
        n = relay_failures.get(relay, 0)
        runs = f"; {n} failures in a row" if n > 1 else ""
        click.echo(f"  relay {printable(relay)} paused {seconds} s more (it could not be used: refused, unreachable, "
                   f"or our AUTH/TLS refused{runs}; retried when the pause ends)")
    if rows is not None:
        click.echo("")
        for r in rows:
            reply = f"{r['reply_code'] or ''} {r['reply'] or ''}".strip()
            # the reply text is the remote server's: its control characters (ESC ...) never reach the terminal
            click.echo(f"  {printable(r['address']):<36} {r['state']:<8} {r['attempts']:>2}  "
                       f"{r['smtp_phase'] or '-':<11} {r['reason'] or '-':<16} {printable(reply[:80])}")


@send.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def send_list(as_json):
    """Every job with its counts (like postqueue -p, one line per job).

    \b
      mailhygiene send list
      mailhygiene send list --json
    """
    from ..sender.queue import Queue

    jobs = Queue.for_config(_cfg(reads_data=True), read_only=True).jobs()
    if as_json:
        click.echo(json.dumps(jobs, ensure_ascii=False, indent=2))
        return
    if not jobs:
        click.echo("the queue is empty")
        return
    click.echo(f"{'job':>4} {'name':<16} {'created':<16} {'state':<6} {'queued':>7} {'deferred':>8} {'sent':>7} "
               f"{'failed':>7} {'skipped':>7}  subject")
    for j in jobs:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(j["created_at"]))
        click.echo(f"{j['job_id']:>4} {printable(j['name'][:16]):<16} {created:<16} {'held' if j['held'] else 'active':<6} "
                   f"{j['queued']:>7} {j['deferred']:>8} {j['sent']:>7} {j['failed']:>7} {j['skipped']:>7}  "
                   f"{printable(j['subject'][:40])}")


@send.command("hold")
@click.argument("job_id", type=JOB_ID)
def send_hold(job_id):
    """Hold a job: none of its messages starts until `send release` (like postsuper -h).

    \b
      mailhygiene send hold 12
    """
    from ..sender.queue import Queue

    n = Queue.for_config(_cfg()).set_held(job_id, True)
    click.echo(f"job {job_id} held: {n} recipients wait (messages already under way finish)")


@send.command("release")
@click.argument("job_id", type=JOB_ID)
def send_release(job_id):
    """Release a held job (like postsuper -H).

    \b
      mailhygiene send release 12
    """
    from ..sender.queue import Queue

    n = Queue.for_config(_cfg()).set_held(job_id, False)
    click.echo(f"job {job_id} released: {n} recipients to send")


@send.command("cancel")
@click.argument("job_id", type=JOB_ID)
def send_cancel(job_id):
    """Cancel a job: its queued and deferred recipients become skipped (reason cancelled).

    \b
      mailhygiene send cancel 12
    """
    from ..sender.queue import Queue

    n = Queue.for_config(_cfg()).cancel(job_id)
    click.echo(f"job {job_id} cancelled: {n} recipients will not be sent")


@send.command("retry")
@click.option("--job", "job_id", type=JOB_ID, default=None, help="Only this job's deferred recipients.")
def send_retry(job_id):
    """Make deferred recipients due now (like postqueue -f).

    \b
      mailhygiene send retry            # every job
      mailhygiene send retry --job 12
    """
    from ..sender.queue import Queue

    n = Queue.for_config(_cfg()).retry_now(job_id)
    click.echo(f"{n} deferred recipients are due now")


@send.command("flush-events")
def send_flush_events():
    """Write the event rows still waiting in the queue's outbox to the event store.

    The daemon does this every few seconds and when it stops; after a crash, this (or the next
    daemon start) writes what the crashed daemon left.

    \b
      mailhygiene send flush-events
    """
    from ..sender.events import flush_outbox
    from ..sender.queue import Queue

    cfg = _cfg()
    n = flush_outbox(Queue.for_config(cfg), cfg.data_dir)
    click.echo(f"{n} event rows written to the event store")


@send.command("mta-config")
@click.option("--mta", required=True, type=click.Choice(["postfix", "sendmail", "qmail"]),
              help="Which MTA's files to generate.")
@click.option("--dir", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write the files into DIR (created) instead of printing them.")
def send_mta_config(mta, out_dir):
    """Relay mode: the MTA's routes and per-carrier limits (特定接続 relays, every carrier domain).

    \b
    postfix:  mailhygiene_transport (postmap it), main.cf and master.cf additions (with each
              relay's STARTTLS/AUTH per transport), mailhygiene_sasl_passwd when a relay has a
              username (the password is not written: fill it in, chmod 600, postmap)
    sendmail: mailertable (makemap hash mailertable < mailertable), mailhygiene.mc mailers; for
              relays needing STARTTLS/AUTH also access (TLS_Srv: requirements), authinfo
              (AuthInfo: with @PASSWORD@, never the password) and mailhygiene-features.mc (the
              FEATUREs to add before MAILER())
    qmail:    control/smtproutes; refused (Error:, nothing written) when a route needs
              STARTTLS or AUTH, which qmail-remote cannot do

    \b
      mailhygiene send mta-config --mta postfix
      mailhygiene send mta-config --mta sendmail --dir /tmp/mailhygiene-sendmail
    """
    from ..core.fsutil import atomic_write_text
    from ..sender.mtaconfig import mta_config

    files = mta_config(_cfg(), mta)
    if out_dir:
        from ..core.fsutil import ensure_dir

        target = Path(out_dir)
        if os.path.lexists(target) and not target.is_dir():
            raise InputError(f"--dir {target} exists and is not a directory: give a directory (it is created "
                             "when missing)")
        ensure_dir(target)
        for name, text in files.items():
            atomic_write_text(target / name, text)
            click.echo(f"wrote {target / name}")
        return
    for name, text in files.items():
        if len(files) > 1:
            click.echo(f"#### {name}")
        click.echo(text, nl=False)


@send.command("preview")
@click.option("--carrier", required=True, help="docomo, au, softbank, ymobile, rakuten or other.")
@click.option("--subject", default=None, help="Subject (or use --job).")
@click.option("--body-file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The text to preview (UTF-8, Shift_JIS or ISO-2022-JP), with --subject.")
@click.option("--job", "job_id", type=JOB_ID, default=None, help="Preview a queued job instead.")
@click.option("--to", "to", default=None, help="Recipient shown in To: (default: a sample address).")
def send_preview(carrier, subject, body_file, job_id, to):
    """Show the exact bytes that would be sent to a carrier, then decode them back.

    \b
      mailhygiene send preview --carrier docomo --subject "冬のご案内" --body-file body.txt
      mailhygiene send preview --carrier au --job 12
    """
    from ..sender.compose import MessageTemplate, charset_for, decode_message
    from ..sender.queue import Queue

    cfg = _cfg()
    s = cfg.sender
    if job_id is not None:
        job = Queue.for_config(cfg, read_only=True).job(job_id)
        subject, body = job.subject, job.body
    elif subject is None or body_file is None:
        raise InputError("give --subject and --body-file, or --job ID")
    else:
        body = _read_text(body_file)
    tpl = MessageTemplate(subject=subject, body=body, from_address=s.from_address, from_name=s.from_name,
                          charset=charset_for(s, carrier), unmappable=s.unmappable,
                          substitutions=s.substitutions)
    msg = tpl.render(to or f"sample@{_sample_domain(carrier)}")
    click.echo(f"# carrier {carrier}: charset {msg.charset} (configured {charset_for(s, carrier)})")
    if msg.notes:
        click.echo(f"# {len(msg.notes)} change(s) for this carrier's charset, each listed once:")
    for note in msg.notes:
        click.echo(f"#   {note}")
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

    Refused or malformed requests, whatever is in them, are logged (data_dir/sender/intake.log)
    and exit 0, so the MTA never bounces anything to an unauthorised sender; only a fault of this
    host (queue locked, disk full, suppression list unavailable, running as another user than the
    data dir's owner) exits 75 (EX_TEMPFAIL) so the MTA keeps the mail and retries. With
    --maildir such a fault stops the run (exit 75) and the mails stay in DIR/new.

    \b
    Postfix master.cf (runs as the data dir's owner; an /etc/aliases pipe runs as nobody):
      mailhygiene unix - n n - 1 pipe
        flags=Rq user=mailhygiene
        argv=/opt/mailhygiene/.venv/bin/mailhygiene --config /etc/mailhygiene/mailhygiene.toml intake
    """
    from ..sender.intake import process_maildir, process_request

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    try:
        cfg = _cfg()
    except MailHygieneError as exc:  # config, data dir or its owner: this host's fault, not the mail's
        if maildir:
            raise
        host_fault_exit(exc, "intake")
    if maildir:
        for res in process_maildir(cfg, maildir, reply=not no_reply):
            click.echo(res.line())
        return
    limit = cfg.intake.max_bytes
    stdin = sys.stdin.buffer
    raw = stdin.read(limit + 1)
    if len(raw) > limit:  # refused unparsed; the rest is read and dropped so the MTA sees no broken pipe
        while stdin.read(1 << 20):
            pass
    try:
        res = process_request(cfg, raw, reply=not no_reply)
    except Exception as exc:  # noqa: BLE001 - only our own faults get here: the MTA must retry, not bounce
        host_fault_exit(exc, "intake")
    click.echo(res.line())


def host_fault_exit(exc: BaseException, command: str) -> NoReturn:
    """Exit 75 (EX_TEMPFAIL: the MTA keeps the mail and retries it; nothing is lost) with one
    `Error:` line on stderr, which the MTA logs (Postfix: "Command output: ..." in the mail log),
    saying what to fix. The common case: an /etc/aliases pipe runs the command as `nobody`
    (Postfix's default_privs), which the data dir's owner check refuses; the fix is a pipe
    transport in master.cf with user=<the data dir's owner> (docs/sender.md)."""
    from ..core.fsutil import describe_os_error
    from ..core.owner import WrongUserError, user_name
    from . import one_line

    text = str(exc)
    if isinstance(exc, WrongUserError):
        owner = _data_dir_owner()
        if owner is not None and owner != os.geteuid():
            me, name = user_name(os.geteuid()), user_name(owner)
            section = "Bounce mailbox" if command == "bounces" else "Wiring it into the MTA"
            text = (f"{command} runs as {me}, but the data directory belongs to {name} and is written by {name} "
                    f"alone: deliver these mails through a pipe transport in Postfix's master.cf with "
                    f"user={name} (flags=Rq user={name} argv=.../mailhygiene --config ... {command}; "
                    f"docs/sender.md \"{section}\"), not an /etc/aliases pipe, which runs as {me}")
    elif isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        text = f"{where}{describe_os_error(exc)}"
    click.echo(f"Error: {one_line(text)} (exit {EX_TEMPFAIL}: the MTA keeps the mail and retries)", err=True)
    sys.exit(EX_TEMPFAIL)


def _data_dir_owner() -> int | None:
    """The uid owning the configured data dir (None when it cannot be told)."""
    app = click.get_current_context().find_root().obj
    try:
        cfg = load_config(app.config_path, data_dir=app.data_dir, timezone=app.timezone)
        return cfg.data_dir.stat().st_uid
    except (MailHygieneError, OSError, AttributeError):
        return None
