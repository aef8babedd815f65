"""The nightly `clean` on a data dir whose disk is not mounted (or that moved) never publishes its
short list over the export a CRM imports (pipeline/suppression/publish.py).

Unmounted, the data dir is an empty folder: `clean` reads the logs still on disk, builds a list
of the last days' dead addresses only, and (before) replaced the export with it, exit 0 and a
warning: the addresses added by hand were gone from the file the CRM imports.
"""

from __future__ import annotations

import csv

from click.testing import CliRunner

from pipeline.cli import cli

from fixtures import SAMPLES

HAND = [f"optout{i:02d}@docomo.ne.jp" for i in range(12)]


def setup(tmp_path):
    data = tmp_path / "mnt" / "mailhygiene"
    published = tmp_path / "published"
    published.mkdir()
    config = tmp_path / "mailhygiene.toml"
    config.write_text(f'data_dir = "{data}"\ntimezone = "Asia/Tokyo"\n'
                      f'[[sources]]\npath = "{SAMPLES / "postfix"}/mail.log*"\nformat = "postfix"\n'
                      f'[export]\npath = "{published / "suppression.csv"}"\n')
    return config, data, published / "suppression.csv"


def run(config, *args):
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def addresses(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [row[0] for row in list(csv.reader(fh))[1:]]


def unmount(data):
    """The volume goes away: its mount point is an empty folder again."""
    data.rename(data.with_name("mailhygiene.real"))
    data.mkdir()


def remount(data):
    import shutil

    shutil.rmtree(data)
    data.with_name("mailhygiene.real").rename(data)


def test_clean_on_an_unmounted_data_dir_keeps_the_published_export(tmp_path):
    config, data, export = setup(tmp_path)
    assert run(config, "clean").exit_code == 0
    for address in HAND:
        assert run(config, "suppression", "add", address).exit_code == 0
    res = run(config, "clean")
    assert res.exit_code == 0, res.output
    published = export.read_bytes()
    before = addresses(export)
    assert set(HAND) <= set(before) and len(before) > 2 * (len(before) - len(HAND))

    unmount(data)
    res = run(config, "clean")                                 # the data dir held data: refused (vanished.py)
    assert res.exit_code == 1 and "held mailhygiene data before" in res.output, res.output
    assert export.read_bytes() == published and list(data.iterdir()) == []

    # --init-data-dir (or a host where nothing recorded it): the export's own guard still holds
    res = run(config, "--init-data-dir", "clean")
    assert res.exit_code == 1, res.output
    error = res.output.strip().splitlines()[-1]
    assert error.startswith(f"Error: the export {export} was not replaced: it lists {len(before)} addresses")
    assert "looks unmounted, moved or replaced" in error and "--allow-shrink" in error
    assert export.read_bytes() == published                    # the CRM still imports the whole list
    assert not (data / "reports").exists()                     # nor a report of the short night

    res = run(config, "clean", "--allow-shrink")              # a new data dir on purpose
    assert res.exit_code == 0, res.output
    assert not set(HAND) & set(addresses(export))


def test_the_mounted_data_dir_publishes_again(tmp_path):
    config, data, export = setup(tmp_path)
    assert run(config, "clean").exit_code == 0
    for address in HAND:
        assert run(config, "suppression", "add", address).exit_code == 0
    assert run(config, "clean").exit_code == 0
    unmount(data)
    assert run(config, "clean").exit_code == 1
    remount(data)
    res = run(config, "clean")
    assert res.exit_code == 0, res.output
    assert set(HAND) <= set(addresses(export))


def test_releases_recorded_in_the_history_are_no_vanished_entries(tmp_path):
    # the operator releases most of the list on purpose: the history explains the drop
    config, data, export = setup(tmp_path)
    assert run(config, "clean").exit_code == 0
    for address in HAND:
        assert run(config, "suppression", "add", address).exit_code == 0
    assert run(config, "clean").exit_code == 0
    assert set(HAND) <= set(addresses(export))
    for address in HAND:
        assert run(config, "suppression", "release", address, "--note", "asked to be mailed again").exit_code == 0
    res = run(config, "clean")
    assert res.exit_code == 0, res.output
    assert not set(HAND) & set(addresses(export))


# ----------------------------------------------------------------------------- the export inside the data dir
# The default: export.path = "exports/suppression.csv", inside the data dir. Unmounted, the old
# export is gone with the volume, so publish.py's shrink guard has nothing to compare with: the
# data dir itself must be refused as new (pipeline/store/vanished.py).

def setup_inside(tmp_path):
    """A config whose export is the default one, inside the data dir; a short log (fast runs)."""
    data = tmp_path / "mnt" / "mailhygiene"
    log = tmp_path / "mail.log"
    log.write_text("".join((SAMPLES / "postfix" / "mail.log").read_text().splitlines(keepends=True)[:40]))
    config = tmp_path / "mailhygiene.toml"
    config.write_text(f'data_dir = "{data}"\ntimezone = "Asia/Tokyo"\n[[sources]]\npath = "{log}"\nformat = "postfix"\n')
    return config, data, log


def first_use(config, data, log):
    """The data dir's first nights (as `clean` does them, without its report: fast): the log read,
    an opt-out added by hand, the export written inside the data dir."""
    for args in (["ingest", str(log)], ["suppression", "add", HAND[0]], ["export", str(data / "suppression.csv")]):
        res = run(config, *args)
        assert res.exit_code == 0, (args, res.output)


def refused(res, data, looks):
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: data dir {data} (data_dir of "), res.output
    assert looks in lines[0] and "--init-data-dir" in lines[0], lines[0]
    return lines[0]


def test_clean_refuses_a_data_dir_that_held_data_and_is_empty_now(tmp_path):
    config, data, log = setup_inside(tmp_path)
    first_use(config, data, log)
    unmount(data)                                                       # an empty mount point
    line = refused(run(config, "clean"), data, "is empty, but it held mailhygiene data before")
    assert "not mounted, or it moved" in line and f"mailhygiene --init-data-dir --config {config} clean" in line
    assert list(data.iterdir()) == []                                   # nothing written: no store, no export
    for args in (["suppression", "add", HAND[1]], ["ingest", str(log)], ["suppress"],
                 ["export", str(tmp_path / "out.csv")], ["suppression", "repair"]):
        res = run(config, *args)                                        # every command that writes
        assert res.exit_code == 1 and "held mailhygiene data before" in res.output, (args, res.output)
    assert list(data.iterdir()) == [] and not (tmp_path / "out.csv").exists()

    data.rmdir()                                                        # the mount point itself gone
    refused(run(config, "clean"), data, "does not exist, but it held mailhygiene data before")
    assert not data.exists()

    data.with_name("mailhygiene.real").rename(data)                     # mounted again: as before
    res = run(config, "suppress")
    assert res.exit_code == 0, res.output
    assert HAND[0] in run(config, "suppression", "list").output


def test_init_data_dir_starts_a_new_one_on_purpose(tmp_path):
    config, data, log = setup_inside(tmp_path)
    first_use(config, data, log)
    unmount(data)
    assert run(config, "ingest", str(log)).exit_code == 1
    res = run(config, "--init-data-dir", "ingest", str(log))
    assert res.exit_code == 0, res.output
    assert run(config, "ingest", str(log)).exit_code == 0              # the new one holds data now
    assert HAND[0] not in run(config, "suppression", "list").output


def test_a_data_dir_never_used_is_new_as_before(tmp_path):
    config, data, log = setup_inside(tmp_path)
    res = run(config, "ingest", str(log))
    assert res.exit_code == 0, res.output
    assert (data / ".mailhygiene-data-dir").is_file()


def test_a_declared_mount_that_is_absent_is_refused_without_any_record(tmp_path, monkeypatch):
    """No record at all (a new host, another user): /etc/fstab says a volume is mounted at the
    data dir (or a parent of it), /proc/self/mountinfo shows it is not."""
    from pipeline.store import vanished

    config, data, log = setup_inside(tmp_path)
    fstab, mountinfo = tmp_path / "fstab", tmp_path / "mountinfo"
    point = str(data.parent).replace(" ", "\\040")
    fstab.write_text(f"# <fs> <mount point> <type> <options> <dump> <pass>\nUUID=1234 / ext4 defaults 0 1\n"
                     f"UUID=abcd {point} ext4 defaults,nofail 0 2\nUUID=ef01 none swap sw 0 0\n")
    mountinfo.write_text("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n")
    monkeypatch.setattr(vanished, "FSTAB", str(fstab))
    monkeypatch.setattr(vanished, "MOUNTINFO", str(mountinfo))
    line = refused(run(config, "clean"), data, "does not exist")
    assert f"{data.parent} is not mounted although {fstab} mounts it there" in line
    assert not data.exists()
    mountinfo.write_text(mountinfo.read_text() + f"40 22 8:17 / {point} rw,relatime shared:9 - ext4 /dev/sdb1 rw\n")
    assert run(config, "ingest", str(log)).exit_code == 0              # mounted: a new data dir on it is fine


def test_the_record_is_kept_outside_the_data_dir(tmp_path, monkeypatch):
    """The service user's home is the data dir: a record there would go with the volume, and
    would put a stranger's folder into the data dir. Not written there (then only a declared
    mount can tell: the systemd units and the crontab example set XDG_STATE_HOME elsewhere)."""
    config, data, log = setup_inside(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(data / ".local" / "state"))
    first_use(config, data, log)
    assert not (data / ".local").exists()
    outside = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(outside))
    assert run(config, "ingest", str(log)).exit_code == 0
    assert (outside / "mailhygiene" / "held-data-dirs").read_text() == f"{data}\n"
