"""`clean --quiet` (and the global `--quiet`): silent when all is well, the problems when not.

cron mails whatever a job prints; the nightly line in the README runs `clean --quiet`, so a
normal night must print nothing and a bad one must say what is wrong.
"""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from pipeline.cli import cli

from fixtures import SAMPLES


def write_config(tmp_path, sources: list[tuple[str, str]]) -> str:
    body = 'timezone = "Asia/Tokyo"\ndata_dir = "data"\n'
    for path, fmt in sources:
        body += f'\n[[sources]]\npath = "{path}"\nformat = "{fmt}"\n'
    conf = tmp_path / "mailhygiene.toml"
    conf.write_text(body, encoding="utf-8")
    return str(conf)


def run(conf, *args):
    return CliRunner().invoke(cli, ["--config", conf, *args])


@pytest.mark.slow
def test_a_good_night_prints_nothing(tmp_path):
    logs = tmp_path / "logs"
    shutil.copytree(SAMPLES / "postfix", logs)
    conf = write_config(tmp_path, [(f"{logs}/mail.log*", "postfix")])
    data = tmp_path / "data"
    # the first night finds no store: it says so, once (cron mails it), since a data dir whose
    # volume is not mounted looks the same and loses the opt-outs added by hand
    first = run(conf, "-q", "clean")
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [f"clean: {data} held no events and no suppression list: a new store "
                                         "and list were started there. Expected on the first night; otherwise "
                                         "that data dir is not mounted or has moved: stop the timer and restore "
                                         "it (the addresses added by hand live only there)"]
    # the next nights, with the option written in each place it may go
    for where in ("clean --quiet", "--quiet clean", "-q clean"):
        (logs / "mail.log").write_bytes((logs / "mail.log").read_bytes())   # (a night with no new lines)
        r = run(conf, *where.split())
        assert r.exit_code == 0, (where, r.output)
        assert r.output == "", where
    # the job did run: events, the list and the export are there
    assert list((data / "events").glob("date=*/*.parquet"))
    assert (data / "exports" / "suppression.csv").is_file()
    # and without --quiet the same job reports every step
    loud = run(conf, "clean")
    assert loud.exit_code == 0 and "== ingest" in loud.output and "== suppress" in loud.output


@pytest.mark.slow
def test_problems_are_printed_in_quiet_mode(tmp_path):
    bad = tmp_path / "bad.log"
    good = (SAMPLES / "postfix" / "mail.log").read_bytes()
    bad.write_bytes(good + b"Nov 20 09:00:02 mx1 postfix/smtp[2]: " + b"A" * 300_000 + b"\n"
                    + b"\x00\x00\x00garbage\n")
    conf = write_config(tmp_path, [(str(bad), "postfix"), (str(tmp_path / "nothing-here*.log"), "postfix")])
    r = run(conf, "clean", "--quiet")
    assert r.exit_code == 0, r.output
    out = r.output
    assert f"ingest {bad}: 2 lines rejected (" in out and "too_long 1" in out and "samples in " in out
    assert f"ingest {tmp_path / 'nothing-here*.log'}: no files match" in out
    # nothing else but the first night's word on the new store
    assert [line for line in out.splitlines() if not line.startswith(("ingest ", "clean: "))] == []


@pytest.mark.slow
def test_a_night_where_no_source_matches_a_file_fails_after_doing_the_rest(tmp_path):
    """Every [[sources]] path matching nothing (logrotate moved the logs, a mistyped path) must
    not look like a good night to cron or a systemd timer: the rule, export and report still run
    on what is stored, then Error and exit 1. (A path without glob characters that does not exist
    is an Error already; one empty glob among sources that match stays a warning.)"""
    conf = write_config(tmp_path, [(str(tmp_path / "nothing-here*.log"), "postfix"),
                                   (str(tmp_path / "gone/mail.log*"), "postfix")])
    assert run(conf, "ingest", str(SAMPLES / "postfix" / "mail.log")).exit_code == 0   # last night's events
    r = run(conf, "clean", "--quiet")
    assert r.exit_code == 1, r.output
    assert "Error: no [[sources]] path matches a file" in r.output and "gone/mail.log*" in r.output
    assert (tmp_path / "data" / "exports" / "suppression.csv").exists()     # the rest of the night ran
