"""The data dir is ours or it is left alone (pipeline/store/datadir.py, README "The data dir").

A --data-dir (or config data_dir) naming another project's directory, a home directory or /etc
got events/, state/, suppression/ ... created in it. Now: a writing command refuses such a
directory (`Error:` naming it and the two ways on, nothing written), a reading command says it
holds no mailhygiene data; a new or empty directory, one with the marker, and one an earlier
version made (no marker, our layout) are used as before.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.store.datadir import MARKER

from fixtures import CLI, SAMPLES

LOG = SAMPLES / "postfix" / "mail.log"


def invoke(args, *, data=None, config=None, stdin=None):
    pre = (["--data-dir", str(data)] if data is not None else []) + (["--config", str(config)] if config else [])
    return CliRunner().invoke(cli, [*pre, "--timezone", "Asia/Tokyo", *map(str, args)], input=stdin)


def tree(root: Path) -> list[tuple[str, int]]:
    """Every path under `root` with its size: what a refused command must leave as it was."""
    return sorted((str(p.relative_to(root)), p.lstat().st_size) for p in root.rglob("*"))


def foreign_dirs(tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'other'\n")
    home = tmp_path / "home"
    (home / "Documents").mkdir(parents=True)
    (home / ".bashrc").write_text("alias ll='ls -l'\n")
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_text("127.0.0.1 localhost\n")
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return {"project": project, "home": home, "etc": etc}


WRITING = [
    ["ingest", LOG],
    ["clean"],
    ["suppress"],
    ["report"],
    ["export", "OUT"],
    ["suppression", "add", "taro@docomo.ne.jp"],
    ["suppression", "release", "taro@docomo.ne.jp"],
    ["suppression", "repair"],
    ["prune", "--before", "2020-01-01"],
    ["bounces"],
    ["send", "cancel", "1"],
]
READING = [
    ["suppression", "list"],
    ["suppression", "show", "taro@docomo.ne.jp"],
    ["send", "list"],
    ["send", "status"],
]


@pytest.mark.parametrize("kind", ["project", "home", "etc"])
def test_writing_commands_refuse_a_foreign_directory_and_write_nothing(tmp_path, kind):
    foreign = foreign_dirs(tmp_path)[kind]
    before = tree(foreign)
    for args in WRITING:
        args = [str(tmp_path / "out.csv") if a == "OUT" else a for a in args]
        res = invoke(args, data=foreign, stdin="")
        # bounces: 75 (EX_TEMPFAIL), so the MTA keeps the mail until the config is fixed
        assert res.exit_code == (75 if args == ["bounces"] else 1), (args, res.output)
        assert res.output.startswith(f"Error: data dir {foreign} is not a mailhygiene data dir"), (args, res.output)
        assert f"touch {foreign / MARKER}" in res.output and "new or empty directory" in res.output
        assert res.output.count("\n") == 1, res.output
        assert tree(foreign) == before, args
    assert not (tmp_path / "out.csv").exists()


def test_reading_commands_say_a_foreign_directory_holds_no_data(tmp_path):
    foreign = foreign_dirs(tmp_path)["project"]
    before = tree(foreign)
    for args in READING:
        res = invoke(args, data=foreign)
        assert res.exit_code == 1, (args, res.output)
        assert res.output.startswith(f"Error: data dir {foreign} holds no mailhygiene data"), (args, res.output)
        assert "pyproject.toml, src" in res.output
    assert tree(foreign) == before
    import pipeline
    from pipeline.core.errors import NoDataError

    with pytest.raises(NoDataError, match="holds no mailhygiene data"):
        pipeline.connect(foreign)
    assert tree(foreign) == before


def test_data_dir_of_the_config_is_named_as_such(tmp_path):
    foreign = foreign_dirs(tmp_path)["home"]
    config = tmp_path / "mailhygiene.toml"
    config.write_text(f'data_dir = "{foreign}"\n')
    res = invoke(["ingest", LOG], config=config)
    assert res.exit_code == 1
    assert res.output.startswith(f"Error: data dir {foreign} (data_dir of {config}) is not a mailhygiene data dir")
    assert not (foreign / "events").exists() and not (foreign / MARKER).exists()


def test_the_console_command_refuses_as_well(tmp_path):
    foreign = foreign_dirs(tmp_path)["etc"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILHYGIENE_")}
    res = subprocess.run([sys.executable, "-c", CLI, "--data-dir", str(foreign), "ingest", str(LOG)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.startswith(f"Error: data dir {foreign} is not a mailhygiene data dir")
    assert sorted(os.listdir(foreign)) == ["hosts", "passwd"]


@pytest.mark.parametrize("how", ["missing", "empty", "lost+found", "marked"])
def test_new_empty_or_marked_directories_are_used_and_marked(tmp_path, how):
    data = tmp_path / "data"
    if how != "missing":
        data.mkdir()
    if how == "lost+found":  # a freshly made file system mounted there
        (data / "lost+found").mkdir()
    if how == "marked":  # the operator's way to keep other files beside the data
        (data / "notes.txt").write_text("our runbook\n")
        (data / MARKER).touch()
    res = invoke(["ingest", LOG], data=data)
    assert res.exit_code == 0, res.output
    assert (data / MARKER).is_file() and list((data / "events").glob("date=*"))
    listed = invoke(["suppression", "list"], data=data)
    assert listed.exit_code == 0, listed.output


def test_a_refused_directory_is_used_once_marked(tmp_path):
    foreign = foreign_dirs(tmp_path)["project"]
    assert invoke(["ingest", LOG], data=foreign).exit_code == 1
    (foreign / MARKER).touch()
    res = invoke(["ingest", LOG], data=foreign)
    assert res.exit_code == 0, res.output
    assert list((foreign / "events").glob("date=*"))


@pytest.mark.parametrize("made_by", ["events", "list", "state", "queue"])
def test_a_data_dir_of_an_earlier_version_keeps_working(tmp_path, made_by):
    """No marker (made before it), the operator's own files beside our layout: recognised by the
    layout, used, and marked on the first write."""
    data = tmp_path / "data"
    assert invoke(["ingest", LOG], data=data).exit_code == 0
    assert invoke(["suppression", "add", "taro@docomo.ne.jp"], data=data).exit_code == 0
    assert invoke(["send", "cancel", "1"], data=data).exit_code in (0, 1)  # opens (creates) the queue
    (data / MARKER).unlink()
    keep = {"events": "events", "list": "suppression", "state": "state", "queue": "sender"}[made_by]
    for name in ("events", "suppression", "state", "sender", "exports", "reports", "rejects"):
        if name != keep and (data / name).exists():
            import shutil

            shutil.rmtree(data / name)
    (data / "mailhygiene.toml.bak").write_text("# the operator's own file\n")
    (data / "notes").mkdir()
    before = invoke(["suppression", "list"], data=data) if made_by == "list" else None
    res = invoke(["suppression", "add", "hanako@docomo.ne.jp"], data=data)
    assert res.exit_code == 0, res.output
    assert (data / MARKER).is_file()
    listed = invoke(["suppression", "list"], data=data)
    assert listed.exit_code == 0 and "hanako@docomo.ne.jp" in listed.output
    if before is not None:
        assert "taro@docomo.ne.jp" in before.output and "taro@docomo.ne.jp" in listed.output


def test_a_data_dir_holding_only_our_folders_is_ours(tmp_path):
    data = tmp_path / "data"
    (data / "reports").mkdir(parents=True)   # an earlier `report` on an empty store
    (data / "exports").mkdir()
    res = invoke(["ingest", LOG], data=data)
    assert res.exit_code == 0, res.output
    assert (data / MARKER).is_file()


def test_stored_data_commands_create_nothing_for_a_missing_data_dir(tmp_path):
    data = tmp_path / "typo"
    for args in (["suppression", "list"], ["suppression", "add", "taro@docomo.ne.jp"], ["prune", "--before", "2020-01-01"]):
        res = invoke(args, data=data)
        assert res.exit_code == 1 and "does not exist" in res.output, (args, res.output)
    assert not data.exists()


def test_a_config_kept_inside_its_own_data_dir_does_not_make_it_foreign(tmp_path):
    data = tmp_path / "srv"
    data.mkdir()
    config = data / "mailhygiene.toml"
    config.write_text('data_dir = "."\n')
    res = invoke(["ingest", LOG], config=config)
    assert res.exit_code == 0, res.output
    assert (data / MARKER).is_file() and (data / "events").is_dir()
    (data / "notes.txt").write_text("x\n")  # the marker holds beside other files too
    assert invoke(["suppression", "list"], config=config).exit_code == 0


def test_a_directory_claimed_by_another_command_meanwhile_is_not_a_vanished_one(tmp_path, monkeypatch):
    """Two commands on one new data dir: the second looks (empty), then the first writes the
    marker and records the directory as holding data, then the second reads that record. The
    directory is ours now, not one whose volume went away (the racing test below saw exit 1)."""
    from pipeline.store import datadir, vanished

    d = tmp_path / "data"
    d.mkdir()
    check = vanished.check

    def the_other_command_first(root, *args, **kwargs):
        datadir.mark(root)                                   # its marker, then the record
        return check(root, *args, **kwargs)

    monkeypatch.setattr(vanished, "check", the_other_command_first)
    assert datadir.claim(d) == d
    assert datadir.status(d) == datadir.OURS
    # a directory still empty after its record says it held data is refused, as before
    monkeypatch.setattr(vanished, "check", check)
    (d / MARKER).unlink()
    with pytest.raises(vanished.DataDirVanished):
        datadir.claim(d)


def test_commands_claiming_one_new_directory_at_once_all_take_it(tmp_path):
    """Two commands starting together on a new data dir (the MTA's pipe running intake for two
    mails, a cron job beside it): one is writing the marker (fsutil's `.NAME.PID.tmp`, then a
    rename) while the other looks at the directory. The first's temporary file is ours, not a
    stranger's: the second must not refuse the directory (the postfix pipe test saw exit 75)."""
    from pipeline.store import datadir

    d = tmp_path / "data"
    d.mkdir()
    (d / f".{MARKER}.4242.tmp").write_text("being written")
    assert datadir.status(d) == datadir.OURS
    datadir.claim(d)                                          # no ForeignDataDir
    (d / ".events.17.tmp").write_text("")
    (d / "notes.txt").write_text("mine")                     # a stranger still makes it foreign
    (d / MARKER).unlink()
    assert datadir.status(d) == datadir.FOREIGN
    assert "notes.txt" in datadir.strangers(d) and ".tmp" not in datadir.strangers(d)
    # processes racing for real: every one of them takes the directory
    procs = []
    for k in range(6):
        fresh = tmp_path / f"race{k}"
        fresh.mkdir()
        code = ("import sys; from pipeline.store import datadir\n"
                f"datadir.claim({str(fresh)!r}); print('ok')")
        procs += [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                  for _ in range(4)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == b"ok", err.decode()
