"""The README's production install, checked without a container.

- every systemd unit in contrib/ passes `systemd-analyze verify` with no warning, and carries the
  settings the README promises (user, adm, StateDirectory=, LogsDirectory=, ProtectSystem=strict,
  the one config path), and each ExecStart= is a real mailhygiene command line;
- contrib/mailhygiene.sysusers and .tmpfiles are applied for real by systemd-sysusers and
  systemd-tmpfiles into a scratch root (--root), and logrotate rotates a scratch log with
  contrib/mailhygiene.logrotate;
- contrib/mailhygiene.toml.example loads, and its data, export and report paths are where the
  units may write;
- every cron line in README.md, docs/*.md and contrib/ is cron-safe: a valid schedule, no bare `%`,
  an absolute path to mailhygiene (cron's PATH is /usr/bin:/bin) and a command line that mailhygiene
  accepts;
- one config path everywhere.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.config import SYSTEM_CONFIG_FILE, load_config

REPO = Path(__file__).resolve().parents[1]
CONTRIB = REPO / "contrib"
UNITS = sorted([*CONTRIB.glob("*.service"), *CONTRIB.glob("*.timer")])
SERVICES = [u for u in UNITS if u.suffix == ".service"]
INSTALLED = "/opt/mailhygiene/.venv/bin/mailhygiene"  # README step 1
STATE_DIR = "/var/lib/mailhygiene"


def need(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        pytest.skip(f"SKIPPED LOUDLY: {tool} is not installed (.ci/run installs it: Debian package "
                    f"{'logrotate' if tool == 'logrotate' else 'systemd'})")
    return path


def unit_values(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


# ----------------------------------------------------------------------------- systemd units
def test_the_units_verify_without_a_warning(tmp_path):
    analyze = need("systemd-analyze")
    assert {u.name for u in UNITS} >= {"mailhygiene-clean.service", "mailhygiene-clean.timer",
                                       "mailhygiene-watch.service", "mailhygiene-send.service",
                                       "mailhygiene-prune.service", "mailhygiene-prune.timer"}
    # The units name the installed program; here it is a stand-in at another path (verify checks
    # that ExecStart= is executable). Nothing else of the file changes.
    program = tmp_path / "bin" / "mailhygiene"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    for unit in UNITS:
        text = unit.read_text()
        (tmp_path / unit.name).write_text(text.replace(INSTALLED, str(program)))
    r = subprocess.run([analyze, "verify", *[str(tmp_path / u.name) for u in UNITS]],
                       capture_output=True, text=True, timeout=120)
    ours = [line for line in (r.stdout + r.stderr).splitlines() if "mailhygiene" in line]
    assert r.returncode == 0 and ours == [], r.stdout + r.stderr


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_each_service_runs_as_the_service_user_in_its_state_directory(unit):
    v = unit_values(unit)
    assert v["User"] == ["mailhygiene"] and v["Group"] == ["mailhygiene"]
    assert v["StateDirectory"] == ["mailhygiene mailhygiene-state"]
    # the record of a data dir that held data lives outside it (pipeline/store/vanished.py)
    assert v["Environment"] == ["XDG_STATE_HOME=/var/lib/mailhygiene-state"]
    assert v["RequiresMountsFor"] == [STATE_DIR]
    assert v["WorkingDirectory"] == [STATE_DIR]
    assert v["ProtectSystem"] == ["strict"]
    assert "ReadWritePaths" not in v, "StateDirectory=/LogsDirectory= are the writable paths"
    if unit.name in ("mailhygiene-clean.service", "mailhygiene-watch.service"):
        assert v["SupplementaryGroups"] == ["adm"]  # reads /var/log/mail.log
        assert v["LogsDirectory"] == ["mailhygiene"]
    (exec_start,) = v["ExecStart"]
    words = shlex.split(exec_start)
    assert words[0] == INSTALLED
    assert words[1:3] == ["--config", SYSTEM_CONFIG_FILE]
    assert_accepted_command_line(words[1:], unit.name)


def seconds(span: str) -> float:
    """A systemd time span ("5", "90s", "10min", "1h 30min") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span):
        total += float(number) * units[unit]
    return total


@pytest.mark.parametrize("unit", [s for s in SERVICES if "Restart" in unit_values(s)], ids=lambda p: p.name)
def test_a_service_that_fails_at_every_start_ends_failed_not_in_a_restart_loop(unit):
    """Restart=on-failure restarts a crash. A start that fails every time (config error, data dir
    of another owner, a second watch: exit 1 at once) must reach the start limit and leave the unit
    failed (`systemctl --failed`, monitoring) rather than restart every RestartSec for good.
    systemd counts starts within StartLimitIntervalSec (default 10 s) against StartLimitBurst
    (default 5); a start that fails at once takes RestartSec."""
    v = unit_values(unit)
    assert v["Restart"] == ["on-failure"]
    restart_sec = seconds(v.get("RestartSec", ["0.1"])[-1])
    interval = seconds(v.get("StartLimitIntervalSec", ["10s"])[-1])
    burst = int(v.get("StartLimitBurst", ["5"])[-1])
    assert interval > 0 and burst >= 2, "0 turns the limit off"
    assert burst * restart_sec < interval, \
        f"{unit.name}: {burst} starts {restart_sec:g} s apart never fit in {interval:g} s: it restarts for good"
    # and one crash a day is still restarted: the limit is not hit by a rare failure
    assert interval <= 3600


def test_the_time_spans_are_read_as_systemd_reads_them():
    assert seconds("5") == 5 and seconds("10s") == 10 and seconds("10min") == 600 and seconds("1h 30min") == 5400


def test_each_timer_has_its_service():
    for timer in CONTRIB.glob("*.timer"):
        assert timer.with_suffix(".service").is_file(), timer.name
        assert unit_values(timer)["OnCalendar"]


def assert_accepted_command_line(args: list[str], where: str) -> None:
    """mailhygiene accepts these arguments: global options, a real sub-command, its options.
    (`--help` at the end: click parses every option before it, then prints the help.)"""
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="mailhygiene")
    assert result.exit_code == 0 and result.output.startswith("Usage: mailhygiene "), \
        f"{where}: `mailhygiene {' '.join(args)}` is not a valid command line:\n{result.output}"
    assert "Usage: mailhygiene [OPTIONS] COMMAND" not in result.output, f"{where}: no sub-command in {args}"


# ----------------------------------------------------------------------------- sysusers, tmpfiles, logrotate
def test_sysusers_and_tmpfiles_create_the_user_and_the_directories(tmp_path):
    sysusers, tmpfiles = need("systemd-sysusers"), need("systemd-tmpfiles")
    root = tmp_path / "root"
    (root / "etc" / "sysusers.d").mkdir(parents=True)
    (root / "etc" / "tmpfiles.d").mkdir(parents=True)
    shutil.copy(CONTRIB / "mailhygiene.sysusers", root / "etc" / "sysusers.d" / "mailhygiene.conf")
    shutil.copy(CONTRIB / "mailhygiene.tmpfiles", root / "etc" / "tmpfiles.d" / "mailhygiene.conf")
    r = subprocess.run([sysusers, f"--root={root}"], capture_output=True, text=True, timeout=60)
    complaints = [ln for ln in r.stderr.splitlines() if not ln.startswith("Creating ")]
    assert r.returncode == 0 and complaints == [], r.stderr
    passwd = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc" / "passwd").read_text().splitlines()}
    group = {ln.split(":")[0]: ln.split(":") for ln in (root / "etc" / "group").read_text().splitlines()}
    user = passwd["mailhygiene"]
    assert user[5] == STATE_DIR and user[6] == "/usr/sbin/nologin"
    assert int(user[2]) < 1000, "a system user"
    assert "mailhygiene" in group["adm"][3].split(","), "member of adm: reads /var/log/mail.log"
    r = subprocess.run([tmpfiles, f"--root={root}", "--create"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    for path, gid_name in ((STATE_DIR, "mailhygiene"), ("/var/lib/mailhygiene-state", "mailhygiene"),
                           ("/var/log/mailhygiene", "adm")):
        st = (root / path.lstrip("/")).stat()
        assert st.st_uid == int(user[2]) and st.st_gid == int(group[gid_name][2]), path
        assert st.st_mode & 0o7777 == 0o750, (path, oct(st.st_mode))


def test_logrotate_rotates_our_logs(tmp_path):
    logrotate = need("logrotate")
    text = (CONTRIB / "mailhygiene.logrotate").read_text()
    assert "/var/log/mailhygiene/*.log {" in text and "su mailhygiene adm" in text
    logs = tmp_path / "log"
    logs.mkdir(mode=0o750)
    (logs / "watch.log").write_text("line 1\nline 2\n")
    # the same rules on a scratch directory; the file's owner stands in for mailhygiene
    conf = tmp_path / "logrotate.conf"
    conf.write_text(text.replace("/var/log/mailhygiene/", f"{logs}/").replace("su mailhygiene adm", "su root root"))
    r = subprocess.run([logrotate, "--force", "--state", str(tmp_path / "state"), str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "error" not in r.stderr.lower(), r.stderr
    assert (logs / "watch.log").read_text() == ""  # truncated in place (copytruncate): watch keeps writing
    assert (logs / "watch.log.1").read_text() == "line 1\nline 2\n"  # delaycompress: .1 stays plain


# ----------------------------------------------------------------------------- the config
def test_the_example_config_loads_and_writes_where_the_units_may():
    cfg = load_config(CONTRIB / "mailhygiene.toml.example")
    assert str(cfg.data_dir) == STATE_DIR
    assert cfg.timezone_name == "Asia/Tokyo"
    for path in (cfg.path_in_data_dir(cfg.export.path), cfg.path_in_data_dir(cfg.report.dir)):
        assert Path(STATE_DIR) in path.parents, f"{path} is outside the units' writable {STATE_DIR}"
    assert [s.path for s in cfg.sources] == ["/var/log/mail.log*"]


def test_one_config_path_everywhere():
    files = [REPO / "README.md", *(REPO / "docs").glob("*.md"), *CONTRIB.iterdir(), *(REPO / "pipeline").rglob("*.py")]
    stale = []
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        for m in re.finditer(r"/etc/mailhygiene[^\s\"'`)]*", text):
            if m.group(0).rstrip(".,:;") not in (SYSTEM_CONFIG_FILE, "/etc/mailhygiene", "/etc/mailhygiene/"):
                stale.append(f"{f.relative_to(REPO)}: {m.group(0)}")
    assert stale == []


# ----------------------------------------------------------------------------- cron lines
FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
NAMES = [{}, {}, {}, {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
         {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}]
SPECIALS = {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
SCHEDULE = re.compile(r"^\s*(@[a-z]+|(?:[0-9*/,\-a-zA-Z]+\s+){4}[0-9*/,\-a-zA-Z]+)\s+(\S.*)$")
# how a crontab entry looks inside a code block that is not marked ```cron (digits and stars)
LOOKS_LIKE_CRON = re.compile(r"^\s*(@(reboot|yearly|annually|monthly|weekly|daily|midnight|hourly)\s|"
                             r"([0-9*][0-9*/,\-]*\s+){5}\S)")


def valid_field(text: str, index: int) -> bool:
    lo, hi = FIELD_RANGES[index]
    names = NAMES[index]

    def value(v: str) -> int | None:
        v = v.lower()
        if v in names:
            return names[v]
        return int(v) if v.isdigit() else None

    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return False
        if base == "*":
            continue
        first, _, last = base.partition("-")
        a, b = value(first), value(last) if last else value(first)
        if a is None or b is None or not (lo <= a <= b <= hi):
            return False
    return True


def cron_lines() -> list[tuple[str, str]]:
    """(where, line) for every crontab entry in the docs: lines of ```cron blocks, the crontab
    file, and any line in a code block that starts with a cron schedule and calls mailhygiene."""
    found = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        block = None
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("```"):
                block = line[3:].strip() if block is None else None
                continue
            if block is None:
                continue
            if block == "cron" and line.strip() and not line.lstrip().startswith("#"):
                found.append((f"{doc.name}:{n}", line))
            elif block != "cron" and LOOKS_LIKE_CRON.match(line) and "mailhygiene" in line:
                found.append((f"{doc.name}:{n}", line))
    for crontab in [*CONTRIB.glob("crontab*"), *CONTRIB.glob("*.cron")]:
        for n, line in enumerate(crontab.read_text().splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#"):
                found.append((f"{crontab.name}:{n}", line))
    return found


def crontab_variables(line: str, variables: dict[str, str]) -> bool:
    m = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", line)
    if not m:
        return False
    value = m.group(2).strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    variables[m.group(1)] = value
    return True


def check_cron_line(where: str, line: str, variables: dict[str, str]) -> list[str]:
    problems = []
    m = SCHEDULE.match(line)
    if not m:
        return [f"{where}: not a crontab line (5 fields or @keyword, then a command): {line!r}"]
    schedule, command = m.group(1), m.group(2)
    if schedule.startswith("@"):
        if schedule not in SPECIALS:
            problems.append(f"{where}: unknown schedule {schedule}")
    else:
        for i, field in enumerate(schedule.split()):
            if not valid_field(field, i):
                problems.append(f"{where}: schedule field {i + 1} {field!r} is not valid")
    if re.search(r"(?<!\\)%", command):
        problems.append(f"{where}: a bare % (cron ends the command there): write \\%")
    for name, value in variables.items():
        command = command.replace(f"${{{name}}}", value).replace(f"${name}", value)
    words = shlex.split(command.replace("\\%", "%"))
    calls = [i for i, w in enumerate(words) if w.endswith("/mailhygiene") or w == "mailhygiene"]
    if not calls:
        return problems + [f"{where}: no mailhygiene command"]
    program = words[calls[0]]
    if not program.startswith("/"):
        problems.append(f"{where}: `{program}` is not an absolute path (cron's PATH is /usr/bin:/bin)")
    args = []
    for w in words[calls[0] + 1:]:
        if w.startswith((">", "2>", "<", "|", "&", ";")):
            break
        args.append(w)
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="mailhygiene")
    if result.exit_code != 0 or "Usage: mailhygiene [OPTIONS] COMMAND" in result.output:
        problems.append(f"{where}: `mailhygiene {' '.join(args)}` is not a mailhygiene command line: "
                        + result.output.strip().splitlines()[-1])
    return problems


def test_every_cron_line_in_the_docs_is_cron_safe():
    lines = cron_lines()
    where_found = {w.split(":")[0] for w, _ in lines}
    assert {"README.md", "reports.md", "crontab.example"} <= where_found, where_found
    problems = []
    variables: dict[str, str] = {}
    for where, line in lines:
        if crontab_variables(line, variables):
            continue
        problems += check_cron_line(where, line, variables)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("line, complaint", [
    ("45 3 * * *  /opt/x/mailhygiene report --fail-over 4%", "bare %"),
    ("15 3 * * *  mailhygiene clean", "not an absolute path"),
    ("15 25 * * *  /opt/x/mailhygiene clean", "field 2"),
    ("15 3 * *  /opt/x/mailhygiene clean", "field 5"),
    ("15 3 * * *", "not a crontab line"),
    ("15 3 * * *  /opt/x/mailhygiene clena", "not a mailhygiene command line"),
    ("15 3 * * *  /opt/x/mailhygiene clean --loud", "not a mailhygiene command line"),
    ("@nightly /opt/x/mailhygiene clean", "unknown schedule"),
])
def test_the_cron_check_catches_each_mistake(line, complaint):
    assert any(complaint in p for p in check_cron_line("t", line, {})), check_cron_line("t", line, {})


def test_a_good_cron_line_passes():
    assert check_cron_line("t", "30 4 1 * *  /opt/x/mailhygiene --config /etc/x.toml prune --keep-days 400 --yes "
                           "--quiet >>/var/log/x.log 2>&1", {}) == []
    assert check_cron_line("t", '45 3 * * 1-5  /opt/x/mailhygiene report --since "$(date -d yesterday +\\%F)" '
                           "--fail-over 4\\%", {}) == []


def test_the_readme_names_every_contrib_file_and_only_real_ones():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Production install"):readme.index("\n## ", readme.index("## Production install") + 5)]
    named = {n.rstrip(".") for n in re.findall(r"contrib/([\w.*-]+)", section)} - {""}
    for name in named:
        assert list(CONTRIB.glob(name)), f"README names contrib/{name}, which does not exist"
    for f in CONTRIB.iterdir():
        assert any(Path(f.name).match(n) for n in named), f"contrib/{f.name} is not in the README's production section"
    # the steps use the paths the units and the example config use
    for path in (INSTALLED.rsplit("/bin/", 1)[0], SYSTEM_CONFIG_FILE, STATE_DIR, "/etc/sysusers.d/", "/etc/tmpfiles.d/",
                 "/etc/logrotate.d/", "SupplementaryGroups=adm", "StateDirectory=", "LogsDirectory=", "ProtectSystem=strict",
                 "prune", "Upgrades", "Backups"):
        assert path in section, path


def test_the_system_config_is_found_without_config(tmp_path, monkeypatch):
    import pipeline.core.config as config_module

    system = tmp_path / "etc" / "mailhygiene.toml"
    system.parent.mkdir()
    system.write_text('timezone = "Asia/Tokyo"\ndata_dir = "/var/lib/mailhygiene"\n')
    monkeypatch.setattr(config_module, "SYSTEM_CONFIG_FILE", str(system))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    cfg = load_config()
    assert cfg.source == system and str(cfg.data_dir) == STATE_DIR
    # ./mailhygiene.toml wins over the system file; --config (or MAILHYGIENE_CONFIG) over both
    (work / "mailhygiene.toml").write_text('timezone = "UTC"\n')
    assert load_config().source == Path("mailhygiene.toml")
    other = tmp_path / "other.toml"
    other.write_text('timezone = "Europe/London"\n')
    result = CliRunner().invoke(cli, ["config", "show"], env={"MAILHYGIENE_CONFIG": str(other)})
    assert result.exit_code == 0 and f"# config file: {other}" in result.output
    assert 'timezone = "Europe/London"' in result.output


def test_a_working_directory_we_may_not_enter_is_no_config(tmp_path, monkeypatch):
    """`sudo -u mailhygiene mailhygiene …` from /root: the cwd cannot be searched."""
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: needs root to run a child as another user")
    import pwd

    nobody = pwd.getpwnam("nobody")
    locked = Path(tempfile.mkdtemp(prefix="mh-locked-"))
    try:
        locked.chmod(0o700)  # root's, like /root
        probe = ("import sys; from pipeline.core.config import load_config; c = load_config(data_dir='/tmp/x'); "
                 "print('source', c.source)")
        python = shutil.which("python3", path="/usr/bin:/bin")
        if python is None:
            pytest.skip("SKIPPED LOUDLY: no /usr/bin/python3 that another user may start")
        # the child needs an interpreter `nobody` may start; this checkout only on PYTHONPATH (config.py is stdlib-only)
        r = subprocess.run([python, "-c", probe], cwd=locked, user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[],
                           env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        assert r.stdout.strip() in ("source None", f"source {SYSTEM_CONFIG_FILE}")
    finally:
        shutil.rmtree(locked, ignore_errors=True)


# ----------------------------------------------------------------------------- the README's systemctl steps
def readme_systemctl_lines(paragraph: str) -> list[str]:
    """The lines that call systemctl in the first ```sh block after the README's **paragraph.**"""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index(f"**{paragraph}.**")
    block = readme[readme.index("```sh\n", start) + 6:]
    block = block[:block.index("```")]
    return [line for line in block.splitlines() if "systemctl" in line]


@pytest.mark.parametrize("paragraph", ["Upgrades", "Backups"])
@pytest.mark.parametrize("enabled", [{"mailhygiene-watch"}, {"mailhygiene-watch", "mailhygiene-send"}, set()],
                         ids=["watch-only", "both", "none"])
def test_upgrade_and_backup_steps_start_only_the_services_you_run(tmp_path, paragraph, enabled):
    """An install without the sender (it is optional) must not have it started by an upgrade or a
    backup: the README's systemctl lines run with a stand-in systemctl that logs its calls."""
    sh = shutil.which("sh", path="/usr/bin:/bin")
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    log = tmp_path / "calls"
    fake.write_text("#!/bin/sh\n"
                    f'echo "$*" >> {log}\n'
                    'if [ "$1" = is-enabled ]; then\n'
                    '  for u in "$@"; do case "$u" in -*|is-enabled) ;; *) unit=$u ;; esac; done\n'
                    f'  case " {" ".join(sorted(enabled))} " in *" $unit "*) exit 0 ;; esac\n'
                    "  exit 1\nfi\nexit 0\n")
    fake.chmod(0o755)
    lines = readme_systemctl_lines(paragraph)
    assert any("stop" in line for line in lines), lines
    r = subprocess.run([sh, "-c", "\n".join(lines)], capture_output=True, text=True, timeout=60,
                       env={"PATH": f"{fake.parent}:/usr/bin:/bin"})
    calls = log.read_text().splitlines()
    started = {u.removesuffix(".service") for c in calls if c.split()[0] in ("start", "restart") for u in c.split()[1:]}
    assert started == enabled, (calls, r.stderr)


# ----------------------------------------------------------------------------- the nightly clean beside a live watch
def test_the_nightly_rule_reads_again_when_a_running_watch_merges_a_day_under_it(tmp_path, monkeypatch):
    """The timer's `clean` runs while `watch` runs; watch merges a day's small files at a quiet
    moment (docs/watch.md, Compaction), so a rule query that listed a file may find it gone:
    DuckDB's `No such file or directory`. Before, the nightly job died on it with `A damaged event
    file: move it out of the data dir ...` (wrong advice, and no rule that night). Now the rule is
    run again (nothing was written yet) and the error, if it persists, says what happened."""
    import duckdb

    import pipeline.suppression.rule as rule_module
    from pipeline.core.errors import EventFileVanished, unreadable_file
    from pipeline.jobs.clean import clean

    from fixtures import SAMPLES

    log = SAMPLES / "postfix" / "mail.log"
    config = tmp_path / "mailhygiene.toml"
    config.write_text(f'timezone = "Asia/Tokyo"\n[[sources]]\npath = "{log}"\nformat = "postfix"\n')
    cfg = load_config(config, data_dir=tmp_path / "data")
    gone = tmp_path / "data" / "events" / "date=2026-12-05" / "part-merged-away.parquet"
    vanished = duckdb.IOException(f'IO Error: Cannot open file "{gone}": No such file or directory')
    original, calls = rule_module.keep_counted_errors, []

    def compacted_under_the_first_read(con, params, engine=None):
        calls.append(1)
        if len(calls) == 1:
            raise vanished  # what DuckDB raises when a listed file was merged away before it was read
        return original(con, params, engine)

    monkeypatch.setattr(rule_module, "keep_counted_errors", compacted_under_the_first_read)
    result = clean(cfg, report=False)
    assert len(calls) == 2 and result.rule is not None
    # said as what it is, not as a damaged file to move aside
    error = unreadable_file(vanished)
    assert isinstance(error, EventFileVanished) and "damaged" not in str(error), error
    assert "run the command again" in str(error)
