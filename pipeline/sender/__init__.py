"""The sender: requests in (intake, `send enqueue`), a SQLite queue, and a throttled SMTP daemon.

Modules, one job each (docs/sender.md tells the whole story):
  recipients.py  address syntax and the enqueue-time check (syntax, duplicates, suppression)
  queue.py       the only SQLite owner: jobs and recipient rows, their states and results
  throttle.py    per-carrier sliding-window limits, rate-limit pauses, quiet minutes (injectable clock)
  routes.py      recipient domain / carrier -> relay host:port (like mailertable / smtproutes)
  compose.py     subject + text -> the exact bytes on the wire (ISO-2022-JP or UTF-8)
  daemon.py      the sending loop: queue -> suppression -> throttle -> route -> compose -> SMTP
  intake.py      request mails (stdin or a Maildir) -> jobs, with authorisation and replies
  cli.py         click commands `send …` and `intake`, thin over the functions above
"""
