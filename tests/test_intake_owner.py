"""`intake` and `bounces` delivered as another user than the data dir's owner (an /etc/aliases pipe
runs as `nobody`) exit 75, so the MTA keeps the mail and retries, with one line saying how to fix
it (a pipe transport in master.cf with user=<owner>); as the owner (what that transport does) the
same mail is handled.

Run for real: a throwaway system user owns the data dir (test_owner's fixture), the commands run in
subprocesses as `nobody` and as that user, a real request mail on stdin.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess

import pytest

from fixtures import CLI, user_python

REQUEST = (b"From: stranger@example.net\r\nTo: requests@mail.example.jp\r\nSubject: campaign\r\n"
           b"Date: Fri, 04 Dec 2026 10:00:00 +0900\r\nMessage-ID: <req-1@example.net>\r\n\r\n"
           b"secret: nope\r\nsubject: x\r\nrecipients: a@docomo.ne.jp\r\n---\r\ntext\r\n")
BOUNCE = (b"From: MAILER-DAEMON@mx.example.jp\r\nTo: bounce@mail.example.jp\r\nSubject: Undelivered Mail\r\n"
          b"Date: Fri, 04 Dec 2026 10:00:00 +0900\r\n\r\n550 5.1.1 <gone@docomo.ne.jp>: User unknown\r\n")


def run(data, *args, user, input: bytes):
    """`mailhygiene --data-dir DATA ARGS < input` as `user`, like an MTA's pipe delivery."""
    python, extra_env = user_python(pwd.getpwuid(data.stat().st_uid))
    env = {k: v for k, v in os.environ.items() if k not in ("MAILHYGIENE_CONFIG", "PYTHONPATH")}
    env.update(extra_env, PYTHONDONTWRITEBYTECODE="1", HOME=str(data.parent))
    r = subprocess.run([*python, "-c", CLI, "--data-dir", str(data), "--timezone", "Asia/Tokyo", *args],
                       input=input, capture_output=True, env=env, cwd=data.parent, timeout=120,
                       user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode("utf-8", "replace"),
                                       r.stderr.decode("utf-8", "replace"))


def _nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("SKIPPED LOUDLY: no user `nobody` on this machine")


def _files(data):
    return sorted(str(p.relative_to(data)) for p in data.rglob("*"))


@pytest.mark.slow
@pytest.mark.parametrize("command,mail", [("intake", REQUEST), ("bounces", BOUNCE)])
def test_delivered_as_nobody_it_defers_with_the_fix(service_user, service_data, command, mail):
    nobody = _nobody()
    owner = service_user.pw_name
    before = _files(service_data)
    r = run(service_data, command, user=nobody, input=mail)
    assert r.returncode == 75, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, r.stderr
    line = errors[0]
    assert line.startswith(f"Error: {command} runs as nobody, but the data directory belongs to {owner}"), line
    assert "master.cf" in line and f"user={owner}" in line and line.endswith("(exit 75: the MTA keeps the mail and retries)")
    assert _files(service_data) == before, "a refused delivery wrote into the data dir"


def test_the_pipe_transport_user_handles_the_same_mail(service_user, service_data):
    r = run(service_data, "intake", "--no-reply", user=service_user, input=REQUEST)
    assert r.returncode == 0, (r.stdout, r.stderr)
    log = service_data / "sender" / "intake.log"
    entry = json.loads(log.read_text(encoding="utf-8").splitlines()[-1])
    assert entry["status"] == "unauthorised" and entry["sender"] == "stranger@example.net"
    assert log.stat().st_uid == service_user.pw_uid


@pytest.mark.slow
def test_postfix_pipe_transport_as_the_owner_delivers_and_as_nobody_defers(service_user, service_data):
    """docs/sender.md's master.cf entry in a private Postfix (tests/test_closed_loop_postfix.py): the
    transport with user=<owner> delivers the request into intake; the same transport with
    user=nobody (what an /etc/aliases pipe runs as) is deferred, and the mail log carries the fix."""
    import shlex
    import shutil
    import smtplib
    import tempfile
    import time
    from pathlib import Path

    from fixtures import DAEMON_DIR, POSTFIX, PrivatePostfix

    if POSTFIX is None or not os.path.exists(f"{DAEMON_DIR}/master") or os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: needs Postfix (apt-get install postfix) and root for a private master")
    nobody = _nobody()
    python, extra_env = user_python(service_user)
    root = Path(tempfile.mkdtemp(prefix="mh-pipe-", dir="/tmp"))
    root.chmod(0o755)
    wrapper = root / "mailhygiene-intake"
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in {**extra_env, "HOME": str(root)}.items())
    wrapper.write_text(f"#!/bin/sh\n{exports}exec {shlex.join(python)} -c {shlex.quote(CLI)} --data-dir "
                       f"{shlex.quote(str(service_data))} --timezone Asia/Tokyo intake --no-reply\n")
    wrapper.chmod(0o755)
    master = "".join(f"{name} unix  -       n       n       -       1       pipe\n"
                     f"  flags=Rq user={user}\n  argv={wrapper}\n"
                     for name, user in (("mh-owner", service_user.pw_name), ("mh-nobody", nobody.pw_name)))
    transport = "requests@mail.example.jp mh-owner:\naliased@mail.example.jp mh-nobody:\n"
    pf = PrivatePostfix(root, {}, transport=transport, master_extra=master)
    try:
        pf.start()
        with smtplib.SMTP("127.0.0.1", pf.port, timeout=10) as smtp:
            for rcpt in ("requests@mail.example.jp", "aliased@mail.example.jp"):
                smtp.sendmail("stranger@example.net", [rcpt], REQUEST)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log = pf.log_text()
            if ("to=<requests@mail.example.jp>" in log and "status=sent" in log
                    and "to=<aliased@mail.example.jp>" in log and "status=deferred" in log):
                break
            time.sleep(0.2)
        log = pf.log_text()
    finally:
        pf.stop()
        shutil.rmtree(root, ignore_errors=True)
    lines = {rcpt: [line for line in log.splitlines() if f"to=<{rcpt}>" in line and "status=" in line]
             for rcpt in ("requests@mail.example.jp", "aliased@mail.example.jp")}
    assert any("relay=mh-owner" in line and "status=sent" in line for line in lines["requests@mail.example.jp"]), log
    deferred = [line for line in lines["aliased@mail.example.jp"] if "status=deferred" in line]
    assert deferred and not [line for line in lines["aliased@mail.example.jp"] if "status=bounced" in line], log
    assert "intake runs as nobody" in deferred[0] and f"user={service_user.pw_name}" in deferred[0], deferred[0]
    entries = [json.loads(line) for line in
               (service_data / "sender" / "intake.log").read_text(encoding="utf-8").splitlines()]
    assert [e["status"] for e in entries] == ["unauthorised"]          # the owner's delivery, once
    assert not [p for p in service_data.rglob("*") if p.lstat().st_uid != service_user.pw_uid]


@pytest.mark.slow
def test_reading_send_commands_run_as_any_user(service_user, service_data):
    """`send list` / `send status` open the queue read-only: root and nobody may look, and leave
    nothing behind; a writing `send` command as root is still refused."""
    from fixtures import run_as as run_cli

    r = run_cli(service_data, "send", "flush-events", user=service_user)   # the owner creates the queue
    assert r.returncode == 0, r.stderr
    queue = service_data / "sender" / "queue.sqlite3"
    assert queue.is_file()
    before = _files(service_data)
    for user in (None, _nobody()):      # root, then nobody
        for args in (["send", "list"], ["send", "status", "--json"]):
            r = run_cli(service_data, *args, user=user)
            assert r.returncode == 0 and "Traceback" not in r.stderr, (user, args, r.stderr)
        assert run_cli(service_data, "send", "list", user=user).stdout.strip() == "the queue is empty"
    r = run_cli(service_data, "send", "retry")
    assert r.returncode == 1 and r.stderr.startswith(f"Error: run as {service_user.pw_name} "), r.stderr
    assert _files(service_data) == before
    assert not [p for p in service_data.rglob("*") if p.lstat().st_uid != service_user.pw_uid]
