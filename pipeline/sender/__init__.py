"""The sender: requests in (intake, `send enqueue`), a SQLite queue, a throttled SMTP daemon, and
its results back into the event store (attempts and bounce mails).

Modules, one job each (docs/sender.md tells the whole story):
  recipients.py  address syntax and the enqueue-time check (syntax, duplicates, suppression), on
                 the canonical address (IDN domains in A-label form: core/idn.py)
  enqueue.py     one campaign -> one job; reads the suppression list, failing closed
  queue.py       the only SQLite owner: jobs, recipient rows, attempt log, throttle state, event
                 outbox, intake replay memory
  throttle.py    per-carrier sliding windows (restored across restarts), rate reduction after 421,
                 pacing, pauses (per carrier; per relay after a refused AUTH/TLS session), quiet
                 minutes (injectable clock)
  routes.py      recipient domain / carrier -> relay host:port (like mailertable / smtproutes)
  relaysession.py  connect, EHLO, STARTTLS and AUTH with a relay, per sender.relays
  relaycheck.py  `doctor relays`: each relay's STARTTLS/AUTH checked without mailing (or sending
                 the password, unless --login)
  mtaconfig.py   relay mode: Postfix transports + limits, sendmail mailertable, qmail smtproutes
  compose.py     subject + text -> the exact bytes on the wire (ISO-2022-JP or UTF-8), substitutions
  daemon.py      the sending loop: queue -> suppression -> throttle -> route -> compose -> SMTP
  events.py      attempts and bounces as event rows; the outbox -> event store flush
  intake.py      request mails (stdin or a Maildir) -> jobs, with authorisation and replies
  bounces.py     bounce mails (DSN, flufl.bounce formats, VERP) -> event rows
  maildir.py     the mails waiting in a Maildir (intake --maildir, bounces --maildir)
  testing.py     a recording SMTP server on loopback (tests, benchmarks, rehearsals)
The commands are in pipeline/cli/send.py (`send …`, `intake`) and pipeline/cli/bounces.py.
"""
