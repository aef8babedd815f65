"""A combined syslog (/var/log/messages) for the benchmark of files whose sample tells no MTA.

Writes `--lines` syslog lines of programs other than an MTA (kernel, systemd with Japanese text,
dovecot, cron, sshd; about 100 bytes each) with the lines of `--mail` (a mail log, e.g.
sample_logs/postfix/mail.log; none when not given) inserted at the fraction `--at` of the text:
at 0.6 they sit between the windows `--format auto` looks at when it opens a file (its first MiB,
a MiB at a third, two thirds and the end; a .gz: its first 16 MiB). `.gz` output is gzip -1.

    .venv/bin/python bench/combined_syslog.py /tmp/messages --mail sample_logs/postfix/mail.log
"""

from __future__ import annotations

import argparse
import gzip
import random
from pathlib import Path

SHAPES = ["kernel: [ {i}.000123] usb 1-1: new high-speed USB device number {j} using xhci_hcd",
          "systemd[1]: Started Session {i} of user ユーザー{j}.",
          "dovecot: imap-login: Login: user=<user{i}@example.jp>, method=PLAIN, rip=192.0.2.{j}, lip=192.0.2.1",
          "CRON[{i}]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
          "sshd[{i}]: Accepted publickey for deploy from 198.51.100.{j} port {i} ssh2"]


def other_programs(n: int, seed: int = 5) -> str:
    rng = random.Random(seed)
    return "".join(f"Nov 13 {7 + i // 3600 % 10:02d}:{i // 60 % 60:02d}:{i % 60:02d} mx1 "
                   + rng.choice(SHAPES).format(i=i, j=i % 250) + "\n" for i in range(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--mail", help="a log whose lines are inserted")
    ap.add_argument("--at", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    text = other_programs(a.lines, a.seed)
    if a.mail:
        cut = text.index("\n", int(len(text) * a.at)) + 1
        text = text[:cut] + Path(a.mail).read_text() + text[cut:]
    data = text.encode()
    Path(a.out).write_bytes(gzip.compress(data, 1) if a.out.endswith(".gz") else data)


if __name__ == "__main__":
    main()
