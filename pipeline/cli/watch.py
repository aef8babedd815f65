"""CLI command `watch`: follow the configured log sources live (thin layer over pipeline.ingest.engine)."""

from __future__ import annotations

import logging
import signal
import sys

import click


@click.command("watch")
@click.option("--verbose", "-v", is_flag=True, help="Also log every file opened and closed.")
@click.option("--no-inotify", is_flag=True,
              help="Do not use file-system notifications; poll every watch.poll_interval seconds.")
@click.pass_obj
def watch_cmd(app, verbose, no_inotify):
    """Follow the [[sources]] of the config and keep the event store current.

    \b
    Example config:
      [[sources]]
      path = "/var/log/mail.log"        # a path or a glob ("/var/log/mail/*.log")
      format = "postfix"                # or auto, sendmail, qmail
      [[sources]]
      path = "/var/log/qmail/current"
      format = "qmail"
      [watch]
      flush_interval = 5.0              # events are queryable within this many seconds
      poll_interval = 1.0               # fallback timer when a notification is missed

    Handles rename+create, copytruncate, compression of rotated files and multilog's
    current -> @….s; a restart (even after kill -9) loses and duplicates nothing.
    SIGTERM or Ctrl-C: flush, save positions, exit 0. While it runs, `clean` leaves log
    ingestion to it (see docs/watch.md). Messages go to stderr.

    \b
    Examples:
      sudo -u mailhygiene mailhygiene watch                 # by hand, in the foreground
      systemctl enable --now mailhygiene-watch.service      # as a service (contrib/)
    """
    from ..core.errors import ConfigError
    from ..ingest.engine import Engine

    cfg = app.cfg
    if not cfg.sources:
        raise ConfigError("no log sources configured: add [[sources]] entries, e.g. "
                          "path = \"/var/log/mail.log\", format = \"postfix\", to the config file")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("mailhygiene.watch")
    for name in ("mailhygiene.watch", "mailhygiene.lake"):  # the lake: this node's uploads ([store] url)
        each = logging.getLogger(name)
        each.addHandler(handler)
        each.setLevel(logging.DEBUG if verbose else logging.INFO)
        each.propagate = False

    got: list[int] = []

    def on_start(engine):
        def stop(signum, frame):
            got.append(signum)
            logger.info("watch: %s received: flushing and stopping", signal.Signals(signum).name)
            engine.stop()

        # SIGHUP (an operator's "reload": kill -HUP, systemctl kill -s HUP) stops the same way, then
        # exits 129 so that systemd's Restart=on-failure starts it again with the config read anew
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, stop)

    from ..ingest.source import raise_open_files_limit
    from ..lake.node import watch_hook

    raise_open_files_limit()  # a glob of many logs: as many open at once as the hard limit allows

    summary = Engine.from_config(cfg).follow(cfg.sources, use_watchdog=not no_inotify, on_start=on_start,
                                             on_stored=watch_hook(cfg))
    from ..ingest.session import rejected_text

    click.echo(f"watch: {summary.lines} lines read, {summary.events_written} events written, "
               f"{rejected_text(summary.rejected)}", err=True)
    if got and got[0] == signal.SIGHUP:  # a restart asked for: not a clean stop (Restart=on-failure)
        click.echo("watch: stopped on SIGHUP (exit 129: systemd restarts it, with the config read anew)", err=True)
        sys.exit(128 + signal.SIGHUP)
