"""Commands that write the data dir run as its owner or stop with `Error: run as USER`.

Run for real: a throwaway system user (useradd; the tests run as root in CI) owns a data dir; the
commands run in subprocesses as root and as that user, and the test walks the data dir for files
the service user could not write.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.core.owner import WrongUserError, require_owner

from fixtures import SAMPLES
from fixtures import run_as as run


def unwritable_for(user, data: Path) -> list[str]:
    """Files and directories under `data` that `user` could not write (as root sees them)."""
    groups = {user.pw_gid}
    bad = []
    for dirpath, dirnames, filenames in os.walk(data):
        for name in [*dirnames, *filenames, None]:
            path = Path(dirpath) if name is None else Path(dirpath) / name
            st = path.lstat()
            writable = (st.st_uid == user.pw_uid and st.st_mode & 0o200) or \
                       (st.st_gid in groups and st.st_mode & 0o020) or st.st_mode & 0o002
            if not writable:
                bad.append(f"{path} uid={st.st_uid} mode={oct(st.st_mode)}")
    return sorted(set(bad))


@pytest.mark.slow
def test_root_is_refused_and_leaves_nothing(service_user, service_data):
    name = service_user.pw_name
    for args in (["suppression", "add", "taro@docomo.ne.jp", "--note", "asked to stop"],
                 ["ingest", SAMPLES / "sendmail" / "maillog"],
                 ["suppress", "--dry-run"],
                 ["prune", "--before", "2020-01-01", "--dry-run"]):
        r = run(service_data, *args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stderr.startswith(f"Error: run as {name} (sudo -u {name} mailhygiene "), r.stderr
        assert " ".join(map(str, args[:2])) in r.stderr  # the command to run instead
        assert "Traceback" not in r.stderr
    assert list(service_data.iterdir()) == [], "a refused command created files"
    # read-only commands may run as anyone
    r = run(service_data, "suppression", "list")
    assert "run as" not in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_the_owner_runs_and_root_leaves_no_unwritable_file(service_user, service_data):
    r = run(service_data, "ingest", SAMPLES / "sendmail" / "maillog", user=service_user)
    assert r.returncode == 0, r.stderr
    r = run(service_data, "suppression", "add", "taro@docomo.ne.jp", "--note", "asked", user=service_user)
    assert r.returncode == 0, r.stderr
    before = sorted(p for p in service_data.rglob("*"))
    assert before, "the owner's commands wrote nothing"
    # root tries every kind of writer after the owner: refused, nothing new, nothing root-owned
    for args in (["suppression", "release", "taro@docomo.ne.jp"], ["clean"], ["export", service_data / "x.csv"],
                 ["ingest", "--reread", SAMPLES / "sendmail" / "maillog"]):
        r = run(service_data, *args)
        assert r.returncode == 1 and r.stderr.startswith(f"Error: run as {service_user.pw_name} "), (args, r.stderr)
    assert sorted(p for p in service_data.rglob("*")) == before
    assert unwritable_for(service_user, service_data) == []
    assert not [p for p in service_data.rglob("*") if p.lstat().st_uid == 0]


def test_a_leftover_root_file_is_named_with_the_fix(service_user, service_data):
    state = service_data / "state"
    state.mkdir()
    os.chown(state, service_user.pw_uid, service_user.pw_gid)
    stale = state / "clean.lock"
    stale.write_text("")  # root-owned, 0644: what an older version run with sudo left behind
    stale.chmod(0o644)
    r = run(service_data, "suppression", "add", "a@au.com", user=service_user)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"Error: {stale} belongs to root and is not writable for {service_user.pw_name}")
    assert f"chown -R {service_user.pw_name}: {service_data}" in r.stderr
    assert not (service_data / "suppression").exists()


def test_require_owner_in_process(tmp_path):
    """The library check itself: a missing dir passes, our own passes, another uid's is refused."""
    require_owner(tmp_path / "missing")
    mine = tmp_path / "mine"
    mine.mkdir()
    require_owner(mine)
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: chown to another uid needs root")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 54321, 54321)  # a uid with no passwd entry
    with pytest.raises(WrongUserError, match=r"^run as 54321 \(sudo -u '#54321' mailhygiene suppress\)"):
        require_owner(theirs, command="mailhygiene suppress")


def log_dir_only_adm_may_enter(service_data: Path) -> Path:
    """/var/log/exim4 on Debian: 2750 root:adm, a log in it that the service user could read if
    it could reach it; the service user is not in the directory's group (adm left out)."""
    logs = service_data.parent / "exim4"
    logs.mkdir(mode=0o750)
    (logs / "mainlog").write_bytes((SAMPLES / "postfix" / "mail.log").read_bytes())
    (logs / "mainlog").chmod(0o644)
    return logs


@pytest.mark.slow
@pytest.mark.parametrize("path", ["mainlog", "mainlog*"], ids=["named", "glob"])
def test_logs_in_a_directory_the_service_user_may_not_enter_are_named_with_the_fix(service_user, service_data,
                                                                                     path):
    """Before: clean crashed with `internal error: PermissionError` (a named log) or said `no files
    match` (a glob), and watch said `does not exist (yet)` or nothing at all."""
    import signal
    import subprocess
    import time

    from fixtures import user_python

    logs = log_dir_only_adm_may_enter(service_data)
    config = service_data.parent / "mailhygiene.toml"
    config.write_text(f'[[sources]]\npath = "{logs / path}"\nformat = "postfix"\n')
    config.chmod(0o644)
    said = f"may not enter the directory {logs}: give the service user access to the logs"
    for args in (["clean", "--quiet"], ["ingest", logs / path]):
        r = run(service_data, "--config", config, *args, user=service_user)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert said in r.stderr and "adduser mailhygiene adm" in r.stderr, (args, r.stderr)
        assert "internal error" not in r.stderr and "no files match" not in r.stderr, r.stderr
    python, extra_env = user_python(service_user)
    err = service_data.parent / "watch.err"
    with open(err, "w") as fh:
        os.chown(err, service_user.pw_uid, service_user.pw_gid)
        proc = subprocess.Popen([*python, "-c", "from pipeline.cli import main; main()", "--config", str(config),
                                 "--data-dir", str(service_data), "watch", "--no-inotify"],
                                stdout=subprocess.DEVNULL, stderr=fh, cwd=service_data.parent,
                                env={**extra_env, "PATH": "/usr/bin:/bin", "HOME": str(service_data)},
                                user=service_user.pw_uid, group=service_user.pw_gid, extra_groups=[])
    try:
        deadline = time.monotonic() + 60  # a hang guard, not a speed target
        while said not in err.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        text = err.read_text()
        assert said in text and "watch: " in text, text
        assert "does not exist" not in text, text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
