"""Click command `mailhygiene bounces`: bounce mails (stdin or a Maildir) -> event rows.

Thin: options -> pipeline.sender.bounces.process_bounces -> one line per mail. Anything wrong with
a mail is a logged refusal and exit 0 (so the MTA never bounces a bounce); a fault of this host
(queue locked, disk full) exits 75 so the MTA keeps the mail and retries.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from ..core.errors import MailHygieneError
from .send import EX_TEMPFAIL, host_fault_exit  # noqa: F401 - EX_TEMPFAIL: the status it documents


@click.command("bounces")
@click.option("--maildir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Read the mails waiting in DIR/new instead of one mail on stdin.")
@click.option("--recipient", default=None, metavar="ADDR",
              help="The bounce's envelope recipient (VERP address; a pipe transport passes ${original_recipient}); "
                   "default $ORIGINAL_RECIPIENT or $RECIPIENT as Postfix's local delivery sets them.")
@click.pass_context
def bounces_cmd(ctx, maildir, recipient):
    """Record bounce mails (DSNs and carriers' own formats) as events, like log lines.

    \b
    Postfix master.cf (runs as the data dir's owner; an /etc/aliases pipe runs as nobody and is refused):
      mailhygiene-bounces unix - n n - 1 pipe
        flags=Rq user=mailhygiene
        argv=/opt/mailhygiene/.venv/bin/mailhygiene --config /etc/mailhygiene/mailhygiene.toml bounces
    or from cron, as the owner:  mailhygiene bounces --maildir /var/mail/bounce/Maildir
    """
    from ..sender.bounces import process_bounces

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    # flufl.bounce logs every detector it tries, and a detector's own exception (a mail without
    # From: IndexError in its Yale detector) with its traceback at ERROR, though it carries on:
    # our reader says what it found (process_bounces logs flufl's failures at debug)
    logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
    try:
        cfg = ctx.obj.cfg
    except MailHygieneError as exc:  # config, data dir or its owner: this host's fault, not the mail's
        if maildir:
            raise
        host_fault_exit(exc, "bounces")
    envelope = recipient or os.environ.get("ORIGINAL_RECIPIENT") or os.environ.get("RECIPIENT")
    try:
        if maildir:
            results = process_bounces(cfg, maildir=maildir)
        else:
            stdin = sys.stdin.buffer
            raw = stdin.read(cfg.intake.max_bytes + 1)
            if len(raw) > cfg.intake.max_bytes:
                while stdin.read(1 << 20):
                    pass
            results = process_bounces(cfg, raw=raw, envelope_recipient=envelope)
    except Exception as exc:  # noqa: BLE001 - only faults of this host get here (the queue unusable, a full
        # disk): from stdin the MTA keeps the mail and retries (75); a Maildir run says it and stops (1)
        if maildir and isinstance(exc, MailHygieneError):
            raise
        host_fault_exit(exc, "bounces")
    for res in results:
        click.echo(res.line())
