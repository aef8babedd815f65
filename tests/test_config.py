"""The configuration is typed and validated: every bad value is a ConfigError naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.config import DEFAULTS, SECRET_MASK, effective_values, load_config, render_toml
from pipeline.core.errors import ConfigError
from pipeline.core.vocabulary import REASONS


def _load(tmp_path, text: str | bytes):
    path = tmp_path / "mailhygiene.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return load_config(path, timezone=None if "timezone" in str(text) else "UTC")


@pytest.mark.parametrize("text, message", [
    ('data_dir = 5\n', r"data_dir must be a string"),
    ('[rule]\nmin_errors = true\n', r"rule\.min_errors must be a whole number, got true"),
    ('[rule]\nmin_errors = 0\n', r"rule\.min_errors must be >= 1"),
    ('[rule]\ncounted_reasons = ["user_unknwon"]\n', r"rule\.counted_reasons.*unknown value 'user_unknwon'"),
    ('[rule]\ncounted_reasons = []\n', r"rule\.counted_reasons must not be empty"),
    ('[rule]\ncounted_reasons = "user_unknown"\n', r"rule\.counted_reasons must be a list"),
    ('[rule]\nmin_days = 3\nmin_errors = 2\n', r"rule\.min_days \(3\) cannot exceed rule\.min_errors"),
    ('[carriers]\ndocomo = "example.jp"\n', r"carriers\.docomo must be a list"),
    ('[carriers]\ndocomoo = ["example.jp"]\n', r"carriers has unknown name 'docomoo'"),
    ('[ingest]\nbatch_events = -5\n', r"ingest\.batch_events must be >= 1"),
    ('[watch]\nflush_interval = 0\n', r"watch\.flush_interval must be >= 0\.05"),
    ('[guard]\nmax_new_fraction = 5\n', r"guard\.max_new_fraction must be <= 1"),
    ('[sender]\ncharset = "latin-1"\n', r"sender\.charset has unknown value 'latin-1'"),
    ('[sender.rates]\nau = {count = 0, interval = 60}\n', r"sender\.rates\.au\.count must be >= 1"),
    # a mistyped carrier in a per-carrier table was ignored: docomo sent at default_rate, 30/s
    ('[sender.rates]\ndocmo = {count = 5, interval = 60}\n', r"sender\.rates has unknown carrier 'docmo'"),
    ('[sender]\ncharsets = {AU = "utf-8"}\n', r"sender\.charsets has unknown carrier 'AU'"),
    ('[sender]\nconnections = {dokomo = 2}\n', r"sender\.connections has unknown carrier 'dokomo'"),
    ('[sender]\nsession_recipients = {softbnk = 50}\n', r"sender\.session_recipients has unknown carrier"),
    ('[sender]\nquiet_carriers = ["docomo ne jp"]\n', r"sender\.quiet_carriers has unknown value"),
    ('[doctor]\nresolver_port = 70000\n', r"doctor\.resolver_port must be <= 65535"),
    ('[[sources]]\nformat = "postfix"\n', r"sources\[0\]\.path is required"),
    ('[[sources]]\npath = "/var/log/mail.log"\nformat = "exim"\n', r"sources\[0\]\.format has unknown value 'exim'"),
    ('[rules]\nmin_errors = 2\n', r"unknown setting 'rules'"),
    ('[rule]\nmin_error = 2\n', r"unknown setting 'rule\.min_error'"),
    ('timezone = "Asia/Tokio"\n', r"timezone: unknown time zone 'Asia/Tokio'"),
    ('rule = 5\n', r"rule must be a table"),
    ('sources = "/var/log/mail.log"\n', r"sources must be \[\[sources\]\] tables, one per entry"),
    ('sources = ["/var/log/mail.log"]\n', r"sources\[0\] must be a table: write each entry as a line \[\[sources\]\]"),
    ('[rule\n', r"not valid TOML"),
])
def test_bad_values_name_the_file_and_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message) as info:
        _load(tmp_path, text)
    assert str(tmp_path / "mailhygiene.toml") in str(info.value) or "time zone" in message


def test_bad_bytes_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(bad byte at offset 12\)"):
        _load(tmp_path, b'data_dir = "\xff\xfe"\n')


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_typed_sections_and_table_merging(tmp_path):
    cfg = _load(tmp_path, '[rule]\nmin_errors = 3\n[sender.rates]\ndocomo = {count = 5, interval = 1}\n'
                          '[carriers]\ndocomo = ["example-docomo.jp"]\n')
    assert cfg.rule.min_errors == 3 and cfg.rule.window_days == 7
    assert cfg.sender.rate_for("docomo").count == 5 and cfg.sender.rate_for("docomo").interval == 1.0
    assert cfg.sender.rate_for("au").count == 100  # the built-in table is extended, not replaced
    assert cfg.sender.rate_for("softbank") == cfg.sender.default_rate
    assert cfg.carriers == {"docomo": ("example-docomo.jp",)}
    assert load_config(tmp_path / "mailhygiene.toml", data_dir="x").data_dir.name == "x"


def test_secrets_are_masked_in_config_show(tmp_path):
    cfg = _load(tmp_path, '[intake]\nshared_secret = "hunter2-very-secret"\n')
    assert cfg.intake.shared_secret == "hunter2-very-secret"
    shown = render_toml(effective_values(cfg))
    assert "hunter2" not in shown and SECRET_MASK in shown


def test_defaults_cover_every_counted_reason_name():
    assert set(DEFAULTS["rule"]["counted_reasons"]) <= set(REASONS)


def test_the_vocabulary_matches_the_reason_modules_and_carrier_table():
    from pipeline.classify.carriers import CarrierTable
    from pipeline.classify.reasons import REASONS as MODULE_REASONS

    assert set(MODULE_REASONS) == set(REASONS)
    assert set(CarrierTable.default().domains.values()) <= set(__import__("pipeline.core.vocabulary").core.vocabulary.CARRIERS)


def test_a_relative_data_dir_in_the_file_is_relative_to_the_file(tmp_path):
    cfg = _load(tmp_path, 'data_dir = "store"\n')
    assert cfg.data_dir == (tmp_path / "store").resolve()


def test_a_file_without_data_dir_puts_the_default_beside_the_file_whatever_the_cwd(tmp_path, monkeypatch):
    """A config file naming no data_dir gave "./mailhygiene-data" of the cwd: `suppression add`
    typed in one directory wrote an opt-out to a list the nightly job, started elsewhere, never read."""
    cfg_file = tmp_path / "etc" / "mailhygiene.toml"
    cfg_file.parent.mkdir()
    cfg_file.write_text('timezone = "UTC"\n', encoding="utf-8")
    seen = set()
    for cwd in ("a", "b"):
        (tmp_path / cwd).mkdir()
        monkeypatch.chdir(tmp_path / cwd)
        seen.add(load_config(cfg_file).data_dir)
    assert seen == {(tmp_path / "etc" / "mailhygiene-data").resolve()}
    assert load_config(cfg_file, data_dir="here").data_dir == Path("here")  # --data-dir: the cwd's
    assert load_config(None, timezone="UTC").data_dir == Path("mailhygiene-data")  # no file: the cwd's
    # `--config /dev/null` (no settings, ignoring ./mailhygiene.toml): never /dev/mailhygiene-data
    assert load_config("/dev/null", timezone="UTC").data_dir == Path("mailhygiene-data")


def test_relative_source_paths_are_relative_to_the_file_whatever_the_cwd(tmp_path, monkeypatch):
    """A relative [[sources]] path followed the cwd: the timer (cwd /var/lib/mailhygiene), cron
    (the user's home) and a shell each read other logs, or none, from one config."""
    cfg_file = tmp_path / "etc" / "mailhygiene.toml"
    cfg_file.parent.mkdir()
    cfg_file.write_text('timezone = "UTC"\n[[sources]]\npath = "../logs/mail.log*"\n'
                        '[[sources]]\npath = "/var/log/maillog"\n[[sources]]\npath = "~/mail.log"\n', encoding="utf-8")
    seen = set()
    for cwd in ("a", "b"):
        (tmp_path / cwd).mkdir()
        monkeypatch.chdir(tmp_path / cwd)
        seen.add(tuple(s.path for s in load_config(cfg_file).sources))
    assert seen == {(str(tmp_path / "logs" / "mail.log*"), "/var/log/maillog", "~/mail.log")}


def test_extra_carrier_domains_reach_every_stage(tmp_path):
    """`[carriers] docomo = ["example-docomo.jp"]` (README): ingest stores the carrier, classify
    names it, and the sender's generated MTA routing includes the domain."""
    import subprocess
    import sys

    import pipeline

    cfg_file = tmp_path / "mailhygiene.toml"
    cfg_file.write_text('timezone = "Asia/Tokyo"\ndata_dir = "data"\n[carriers]\ndocomo = ["example-docomo.jp"]\n'
                        '[sender]\nfrom_address = "news@mail.example.jp"\n', encoding="utf-8")
    log = tmp_path / "mail.log"
    log.write_text("Nov  3 16:04:31 mx1 postfix/smtp[123]: 4F1A2B3C4D: to=<taro@example-docomo.jp>, "
                   "relay=mx.example-docomo.jp[192.0.2.7]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=5.1.1, "
                   "status=bounced (host mx.example-docomo.jp[192.0.2.7] said: 550 5.1.1 <taro@example-docomo.jp>: "
                   "Recipient address rejected: User unknown (in reply to RCPT TO command))\n", encoding="utf-8")

    def cli(*args):
        return subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "--config", str(cfg_file), *args],
                              capture_output=True, text=True, timeout=120)

    r = cli("ingest", "--format", "postfix", "--year", "2026", str(log))
    assert r.returncode == 0, r.stderr
    con = pipeline.connect(tmp_path / "data")
    assert con.execute("SELECT carrier, reason FROM events").fetchall() == [("docomo", "user_unknown")]
    r = cli("classify", "--domain", "example-docomo.jp", "550 5.1.1 User unknown", "--phase", "rcpt")
    assert r.returncode == 0 and "docomo" in r.stdout, (r.stdout, r.stderr)
    r = cli("send", "mta-config", "--mta", "sendmail")
    assert r.returncode == 0 and "example-docomo.jp" in r.stdout, (r.stdout[-500:], r.stderr)
