"""The "Large inputs" table of BENCHMARKS.md, measured again: each row's input, built here in the
shape its test uses (tests/test_large_inputs.py and the files the table names), at the table's
size, and the time (and, for the suppression list, the peak memory) of the code on it.

    .venv/bin/python bench/bench_large_inputs.py            # the table's sizes (minutes: 1M rows)
    .venv/bin/python bench/bench_large_inputs.py --quick    # small sizes, seconds
    .venv/bin/python bench/bench_large_inputs.py --before   # also each row's "before": the commit
                                                            # before its fix, in a temporary worktree
    .venv/bin/python bench/bench_large_inputs.py --only reply phase

Each measurement runs in its own child process (`--case NAME --repo DIR`), so that a "before"
imports the old commit's `pipeline` and a hang is cut at --timeout (printed as `>N s`). A
"before" worktree has no compiled C scanner; none of these rows needs it. Times are wall
seconds of the work alone (building the input is not counted); run it under `nice` on a busy
machine and expect the figures to move with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


# ----------------------------------------------------------------------------- the inputs
def _doctor_message(body: str) -> bytes:
    import base64
    from email.mime.nonmultipart import MIMENonMultipart

    footer = ("\n――――――――――\n送信者：株式会社エグザンプル\n〒100-0005 東京都千代田区丸の内1-2-3 エグザンプルビル5階\n"
              "お問い合わせ：support@good.doctor.test ／ TEL 03-1234-5678\n"
              "配信停止をご希望の方は、次のURLからお手続きください。\nhttps://good.doctor.test/unsubscribe?u=1")
    part = MIMENonMultipart("text", "plain", charset="utf-8")
    part.set_payload(base64.encodebytes(("山田 太郎 様\n\nいつもご利用ありがとうございます。\n\n" + body + "\n" + footer)
                                        .encode()).decode("ascii"))
    part["Content-Transfer-Encoding"] = "base64"
    part["From"] = "news@good.doctor.test"
    part["To"] = "taro@example.test"
    part["Subject"] = "冬の新商品のご案内"
    part["Date"] = "Fri, 28 Nov 2025 10:00:00 +0900"
    part["Message-ID"] = "<m1@good.doctor.test>"
    return part.as_bytes()


def _doctor(body: str):
    from pipeline.preflight import check_message

    raw = _doctor_message(body)
    return lambda: check_message(raw, spamassassin=False)


def _qmail_lines(run_bytes: int):
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from pipeline.ingest.parsers import REGISTRY, ParseContext

    run_of = "a:" * (run_bytes // 2)
    lines = ["Sep  6 07:33:33 sd6 qmail: 1157520813.000000 starting delivery 1: msg 53 to remote me@wherever.jp",
             f"Sep  6 07:33:34 sd6 qmail: 1157520814.000000 delivery 1: deferral: Remote_host_said:_451_{run_of}b/"]

    def work():
        ctx = ParseContext(tz=ZoneInfo("Asia/Tokyo"), source_file="t",
                           mtime=datetime(2026, 11, 28, tzinfo=timezone.utc).timestamp())
        parser = REGISTRY["qmail"](ctx, [].append)
        for i, line in enumerate(lines):
            parser.feed(line, i)
    return work


def _explain(text: str):
    from pipeline.classify.classifier import explain

    return lambda: explain("bounced", text)


def _queue(n: int, tmp: Path):
    from pipeline.sender.queue import Queue

    q = Queue(tmp / "queue.sqlite3")
    carriers = ("au", "docomo", "other", "softbank")
    step = 100_000
    for start in range(0, n, step):
        rows = [(f"u{i}@d{i % 4}.example.jp", f"d{i % 4}.example.jp", carriers[i % 4])
                for i in range(start, min(n, start + step))]
        q.add_job(subject="s", body="b", from_address="news@mail.example.jp", recipients=rows)

    def work():
        q.due_carriers(0.0)
        q.due_queued("docomo", n // 2, 200)
    return work


def _dsn_bounce(n: int, text_lines: int) -> bytes:
    text = "The mail system could not deliver your message.\r\n" * text_lines
    blocks = "".join(f"Final-Recipient: rfc822; u{i}@docomo.ne.jp\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                     "Diagnostic-Code: smtp; 550 Unknown user\r\n\r\n" for i in range(n))
    return ("From: MAILER-DAEMON@mx.example.jp\r\nTo: news@mail.example.jp\r\nSubject: Undelivered\r\n"
            "Date: Fri, 04 Dec 2026 10:00:00 +0900\r\nMessage-ID: <b1@mx.example.jp>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            f"--B\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n{text}\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.jp\r\n\r\n"
            f"{blocks}--B--\r\n").encode()


def _qmail_bounce(n: int, copied_lines: int) -> bytes:
    failures = "".join(f"<u{i}@au.com>:\n111.86.247.1 does not like recipient.\nRemote host said: 550 <u{i}@au.com>: "
                       "User unknown\nGiving up on 111.86.247.1.\n\n" for i in range(n))
    return ("From: MAILER-DAEMON@mx.example.jp\nTo: news@mail.example.jp\nSubject: failure notice\n"
            "Date: Fri, 04 Dec 2026 10:00:00 +0900\nMessage-ID: <q1@mx.example.jp>\n\n"
            "Hi. This is the qmail-send program at mx.example.jp.\nI'm afraid I wasn't able to deliver your message "
            "to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n"
            + failures + "--- Below this line is a copy of the message.\n\n"
            + "a line of the returned message\n" * copied_lines).encode()


def _bounce_case(kind: str, raw: bytes, n: int):
    return f"{n:,} recipients in {len(raw) / 1e6:.1f} MB ({kind})", _bounce(raw)


def _bounce(raw: bytes):
    from pipeline.sender.bounces import parse_bounce

    return lambda: parse_bounce(raw, envelope_from="news@mail.example.jp")


def _intake(text: str):
    from pipeline.sender.intake import Request, parse_body

    return lambda: parse_body(text, Request(sender="ops@example.jp", message_id="", request_key="k"))


def _carrier(domain: str):
    from pipeline.classify.carriers import CarrierTable

    table = CarrierTable.from_config({"au": ["example.jp"]})
    return lambda: table.carrier_for("taro@" + domain)


def _brackets(text: str):
    from pipeline.classify.classifier import _quick_normalise

    return lambda: _quick_normalise(text)


def _html(html: str):
    from pipeline.preflight.body import html_to_text

    return lambda: html_to_text(html)


def _alternatives(n: int):
    from pipeline.preflight.body import MessageText, Part

    parts = [Part("part 0", "text/plain", "us-ascii", "shared", "shared")]
    parts += [Part(f"part {i + 1}", "text/html" if i % 2 else "text/plain", "us-ascii", f"v{i}", f"v{i}",
                   alternative=(1, i)) for i in range(n)]
    return lambda: MessageText("s", "f", "", parts, []).views()


def _parse_reply(text: str):
    from pipeline.classify.classifier import parse_reply

    return lambda: parse_reply(text)


def _phase(text: str):
    from pipeline.ingest.parsers.postfix import smtp_phase_of

    return lambda: smtp_phase_of(text)


def _store_error(text: str):
    from pipeline.store.warehouse import _corrupt_file_error

    return lambda: _corrupt_file_error(Exception(text))


def _suppression_list(n: int, args: list[str], tmp: Path):
    """`mailhygiene suppression list ARGS` over a list of n entries, in a grandchild (its own peak
    memory); the work's figure is that process's wall time and peak RSS."""
    from pipeline.suppression import store

    step = 100_000
    for start in range(0, n, step):
        store.add_many(tmp, [f"user{i}@docomo.ne.jp" for i in range(start, min(n, start + step))], "bulk")
    env = {**os.environ, "MAILHYGIENE_DATA_DIR": str(tmp), "PYTHONPATH": os.environ.get("BENCH_REPO", "")}
    env.pop("MAILHYGIENE_CONFIG", None)
    cmd = [sys.executable, "-c", "from pipeline.cli import main; main()", "suppression", "list", *args]

    def work():
        with open(os.devnull, "wb") as out:
            child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, env=env)
            _, status, usage = os.wait4(child.pid, 0)
            err = child.stderr.read().decode(errors="replace")
            child.stderr.close()
        if status:
            raise RuntimeError(f"{' '.join(cmd[3:])}: exit {status}: {err[-300:]}")
        return {"rss_mb": usage.ru_maxrss / 1024}
    return work


# name -> (table row, fix commit, {size: input description}, builder(size, tmp) -> callable)
# Each row's sizes: "full" are the table's, "quick" small enough for seconds.
CASES = {
    "doctor_address": ("`doctor message`, address pattern", "cd0749b",
                       {"full": [20_000, 300_000], "quick": [20_000]},
                       lambda n, tmp: (f"one {n // 1000} KB line ('y')", _doctor("y" * n))),
    "qmail_relay": ("qmail delivery relay pattern (ingest)", "cd0749b",
                    {"full": [60_000], "quick": [10_000]},
                    lambda n, tmp: (f"a {n // 1000} KB remote reply ('a:') in one log line", _qmail_lines(n))),
    "not_found": ("classifier phrase `<…> not found`", "40a42bf",
                  {"full": [60_000], "quick": [20_000]},
                  lambda n, tmp: (f"a {n // 1000} KB bounce text ('<a')", _explain("550 " + "<a" * (n // 2)))),
    "daemon_queue": ("send daemon: carriers with work, next queued rows", "91d49eb",
                     {"full": [1_000_000], "quick": [40_000]},
                     lambda n, tmp: (f"a backlog of {n:,} recipients (one refresh + one fetch of 200)", _queue(n, tmp))),
    "bounce_dsn": ("`bounces`: a bounce naming many recipients (DSN)", "92b629c",
                   {"full": [10_000], "quick": [1_000]},
                   lambda n, tmp: _bounce_case("DSN", _dsn_bounce(n, n * 2), n)),
    "bounce_qmail": ("`bounces`: a bounce naming many recipients (qmail)", "92b629c",
                     {"full": [10_000], "quick": [1_000]},
                     lambda n, tmp: _bounce_case("qmail", _qmail_bounce(n, n * 3), n)),
    "intake_blank": ("intake: blank lines before a request's text", "5321010",
                     {"full": [1_000_000], "quick": [100_000]},
                     lambda n, tmp: (f"{n:,} blank lines", _intake("secret: s\nsubject: x\nrecipients:\ntaro@docomo.ne.jp\n---\n"
                                                                  + " \n" * n + "本文\n"))),
    "intake_key": ("intake: a `key: value` line", "f9a4b3d",
                   {"full": [200_000], "quick": [20_000]},
                   lambda n, tmp: (f"{n:,} spaces", _intake("subject:" + " " * n + "冬のセール  \n---\ntext"))),
    "carrier_suffix": ("carrier look-up by domain suffix", "b51775c",
                       {"full": [1_000_000], "quick": [100_000]},
                       lambda n, tmp: (f"a {n // 1000} KB recipient domain ('a.')", _carrier("a." * (n // 2) + "docomo.ne.jp"))),
    "brackets": ("classifier: bracketed ids", "5b2706a",
                 {"full": [300_000], "quick": [30_000]},
                 lambda n, tmp: (f"{n // 1000} KB of `[abcdefghij]`", _brackets("550 " + "[abcdefghij]" * (n // 12)))),
    "html_unclosed": ("`doctor message`: HTML, unclosed tags", "db2cc1c",
                      {"full": [500_000], "quick": [50_000]},
                      lambda n, tmp: (f"{n // 1000} KB of unclosed `<b>` and stray `</i>`",
                                      _html("<p>" + "<b>" * (n // 7) + "x" + "</i>" * (n // 7) + "</p>"))),
    "html_links": ("`doctor message`: HTML, nested links", "db2cc1c",
                   {"full": [25_000], "quick": [2_500]},
                   lambda n, tmp: (f"{n:,} nested links",
                                   _html('<a href="http://x.example.jp/">w' * n + "</a>" * n))),
    "alternatives": ("`doctor message`: multipart/alternative", "db2cc1c",
                     {"full": [10_000], "quick": [1_000]},
                     lambda n, tmp: (f"{n:,} alternatives", _alternatives(n))),
    "suppression_json": ("`suppression list --json`", "ff92c2c",
                         {"full": [1_000_000], "quick": [20_000]},
                         lambda n, tmp: (f"{n:,} entries, --json", _suppression_list(n, ["--json"], tmp))),
    "suppression_limit": ("`suppression list --limit 5`", "ff92c2c",
                          {"full": [1_000_000], "quick": [20_000]},
                          lambda n, tmp: (f"{n:,} entries, --limit 5", _suppression_list(n, ["--limit", "5"], tmp))),
    "reply_spaces": ("classifier: reply phrase before a run of spaces", "249c067",
                     {"full": [2_000, 100_000], "quick": [2_000]},
                     lambda n, tmp: ((f"'error from remote mail server' + {n:,} spaces", _parse_reply("error from remote mail server" + " " * n + "x"))
                                     if n <= 2_000 else (f"'said' + {n:,} spaces", _parse_reply("said" + " " * n + "x")))),
    "postcode_spaces": ("`doctor message`: postcode pattern", "249c067",
                        {"full": [100_000], "quick": [10_000]},
                        lambda n, tmp: (f"'〒100' + {n:,} spaces", _doctor("〒100" + " " * n + "番地なし"))),
    "reply_repeated": ("classifier: 'error from remote mail server' repeated", "6323fe5",
                       {"full": [65_536], "quick": [8_000]},
                       lambda n, tmp: (f"a {n // 1024} KiB reply repeating it, no colon",
                                       _parse_reply(("error from remote mail server" * (n // 29 + 1))[:n - 1] + "x"))),
    "phase_repeated": ("postfix: SMTP phase, '(in reply to ' repeated", "fbf5c12",
                       {"full": [65_536], "quick": [8_000]},
                       lambda n, tmp: (f"a {n // 1024} KiB delivery text repeating it",
                                       _phase(("(in reply to x command))" * (n // 24 + 1))[:n - 1] + "\x01"))),
    "parquet_path": ("store: the Parquet path in a DuckDB error", "3b8523d",
                     {"full": [32_000], "quick": [4_000]},
                     lambda n, tmp: (f"an error text with a run of {n:,} '/'", _store_error("parquet: " + "/" * n + "x"))),
}


# ----------------------------------------------------------------------------- one measurement
def measure(case: str, size: int) -> dict:
    build = CASES[case][3]
    with tempfile.TemporaryDirectory(prefix="bench-large-") as tmp:
        what, work = build(size, Path(tmp))
        t0 = time.perf_counter()
        extra = work()
        seconds = time.perf_counter() - t0
    out = {"what": what, "seconds": seconds}
    if isinstance(extra, dict):
        out.update(extra)
    return out


def run_child(case: str, size: int, repo: Path, timeout: float) -> dict:
    env = {**os.environ, "BENCH_REPO": str(repo), "PYTHONPATH": str(repo)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", case, "--size", str(size), "--repo", str(repo)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=repo)
    except subprocess.TimeoutExpired:
        return {"seconds": None, "note": f">{timeout:g} s"}
    if done.returncode:
        return {"seconds": None, "note": "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:120]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def show(r: dict) -> str:
    if r.get("seconds") is None:
        return r.get("note", "?")
    text = f"{r['seconds']:.3g} s" if r["seconds"] >= 0.001 else f"{r['seconds'] * 1000:.2g} ms"
    if "rss_mb" in r:
        text += f", {r['rss_mb']:,.0f} MB"
    return text


class Worktrees:
    """Temporary `git worktree`s of the commits before the fixes, made on first use."""

    def __init__(self):
        self.made: dict[str, Path] = {}
        self.base = Path(tempfile.mkdtemp(prefix="bench-before-"))

    def before(self, fix: str) -> Path | None:
        if fix not in self.made:
            where = self.base / fix
            done = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), f"{fix}^"],
                                  capture_output=True, text=True)
            self.made[fix] = where if done.returncode == 0 else None
        return self.made[fix]

    def remove(self):
        for where in self.made.values():
            if where is not None:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(where)], capture_output=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds in all)")
    ap.add_argument("--before", action="store_true", help="also time each row's commit before its fix")
    ap.add_argument("--only", nargs="*", default=None, help="cases whose name contains one of these words")
    ap.add_argument("--timeout", type=float, default=300, help="seconds a measurement may take (default 300)")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--repo", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:  # a child: one measurement, one JSON line
        sys.path.insert(0, args.repo)
        print(json.dumps(measure(args.case, args.size)))
        return
    names = [n for n in CASES if args.only is None or any(w in n for w in args.only)]
    worktrees = Worktrees() if args.before else None
    print("| where | input | " + ("before | " if args.before else "") + "now | fix |")
    print("|---|---|" + ("---|" if args.before else "") + "---|---|")
    try:
        for name in names:
            row, fix, sizes, _ = CASES[name]
            for size in sizes["quick" if args.quick else "full"]:
                now = run_child(name, size, REPO, args.timeout)
                cells = [row, now.get("what", name)]
                if args.before:
                    where = worktrees.before(fix)
                    cells.append(show(run_child(name, size, where, args.timeout)) if where else f"no worktree of {fix}^")
                cells += [show(now), fix]
                print("| " + " | ".join(cells) + " |", flush=True)
    finally:
        if worktrees:
            worktrees.remove()


if __name__ == "__main__":
    main()
