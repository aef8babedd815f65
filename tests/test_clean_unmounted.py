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
    res = run(config, "clean")
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
