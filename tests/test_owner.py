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
