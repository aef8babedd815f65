"""pytest fixtures and hooks shared by the test modules (plain helpers: tests/fixtures.py).

Test modules never import this file: pytest hands its fixtures to the tests that name them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from fixtures import OPERATOR_ENV, user_python
from pipeline.core.config import load_config

pytest_plugins = ["lakekit"]  # the lake tests' fixtures (s3_server, bucket): one moto server per session


@pytest.fixture(autouse=True)
def _signals_not_ignored():
    """A test run started as a background job of a script (`make test &`, nohup, cron) has SIGINT
    (and SIGHUP) ignored, and every process a test starts inherits that: `mailhygiene` keeps a
    signal it was started ignoring ignored (nohup semantics, tests/test_signals.py), so the tests
    that send Ctrl-C to a command waited 60 s and failed, depending on which test file ran on
    which worker (the in-process daemon and watch tests install handlers, which children do not
    inherit). Each test starts with them as a terminal session has them (a test that wants one
    ignored sets it in its child)."""
    import signal

    for signum, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL),
                            (signal.SIGHUP, signal.SIG_DFL)):
        if signal.getsignal(signum) == signal.SIG_IGN:
            signal.signal(signum, default)


@pytest.fixture(autouse=True)
def _no_operator_environment(monkeypatch):
    """The CLI reads OPERATOR_ENV (MAILHYGIENE_CONFIG, _DATA_DIR, _TIMEZONE): a developer's own
    settings must not reach the tests (a test that wants one sets it)."""
    for name in OPERATOR_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _own_state_dir(monkeypatch, tmp_path_factory):
    """Each test its own XDG state dir: the record of data dirs that held data
    (pipeline/store/vanished.py) must neither grow in the developer's ~/.local/state nor carry
    one test's data dir into another's (a test that deletes a data dir and starts it again
    would be refused)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))


@pytest.fixture
def cfg(tmp_path):
    return load_config(None, data_dir=tmp_path / "data", timezone="Asia/Tokyo")


# ----------------------------------------------------------------------------- another user
@pytest.fixture(scope="module")
def service_user():
    """A fresh system user (and group) that exists only for this module."""
    if os.geteuid() != 0:
        pytest.skip("SKIPPED LOUDLY: the owner tests need root (to create a user and run as it)")
    if shutil.which("useradd") is None:
        pytest.skip("SKIPPED LOUDLY: useradd is missing (Debian package passwd)")
    name = f"mhtest{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True)
    try:
        user = pwd.getpwnam(name)
        user_python(user)
        yield user
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


@pytest.fixture
def service_data(service_user):
    """A data dir owned by the service user, in a directory every user can enter."""
    base = Path(tempfile.mkdtemp(prefix="mh-owner-"))
    base.chmod(0o755)
    data = base / "data"
    data.mkdir()
    os.chown(data, service_user.pw_uid, service_user.pw_gid)
    try:
        yield data
    finally:
        shutil.rmtree(base, ignore_errors=True)
