"""notebooks/explore_bounces.ipynb runs top to bottom on data built from sample_logs/."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline.core.config import load_config
from pipeline.ingest.engine import ingest
from pipeline.suppression.rule import run_rule
from pipeline.suppression.store import SuppressionStore

from fixtures import REPO, SAMPLES

def _store_with_an_entry(tmp_path):
    """A data dir built from sample_logs/ with the rule applied (full@docomo.ne.jp is listed)."""
    cfg = load_config(None, data_dir=tmp_path / "data", timezone="Asia/Tokyo")
    ingest(cfg, sorted((SAMPLES / "postfix").glob("mail.log*")), progress=False)
    assert run_rule(SuppressionStore(cfg.data_dir), cfg.rule, cfg.guard, "2026-11-30", tz=cfg.timezone_name).applied
    return cfg.data_dir


def _notebook_cell(marker: str) -> str:
    import json

    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and marker in "".join(c["source"]))


def test_notebook_shows_history_times_in_the_configured_zone(tmp_path, monkeypatch):
    """The notebook's set-up cell and section 5 (its own code, run here) show the entry's and its
    history's times in the config file's `timezone`, as `mailhygiene suppression show` prints
    them (they showed UTC, and the zone came from MAILHYGIENE_TIMEZONE or Asia/Tokyo, never from
    the config)."""
    import datetime as dt
    import subprocess

    from fixtures import CLI

    data = _store_with_an_entry(tmp_path)
    config = tmp_path / "mailhygiene.toml"
    config.write_text('timezone = "Pacific/Chatham"\n')     # +13:45 in November: no other zone's offset
    monkeypatch.setenv("MAILHYGIENE_CONFIG", str(config))
    monkeypatch.setenv("MAILHYGIENE_DATA_DIR", str(data))
    monkeypatch.delenv("MAILHYGIENE_TIMEZONE", raising=False)
    monkeypatch.setenv("MAILHYGIENE_ADDRESS", "full@docomo.ne.jp")
    shown = []
    space = {"display": shown.append, "print": lambda *a, **k: None}
    setup = _notebook_cell("import pipeline").replace("from IPython.display import Image, display\n", "")
    exec(setup, space)
    exec(_notebook_cell("ADDRESS = "), space)
    section5 = _notebook_cell('entry = info["entry"]')
    body, last = section5.rsplit("\n", 1)
    exec(body, space)
    history = eval(last.split("#")[0], space)  # noqa: S307 (the cell's value: what the notebook shows)
    assert space["cfg"].timezone_name == "Pacific/Chatham"
    entry = shown[0]
    chatham = dt.timezone(dt.timedelta(hours=13, minutes=45))
    assert entry["first_error"].utcoffset() == chatham.utcoffset(None)
    assert str(history["at"].dt.tz) == "Pacific/Chatham"
    assert all(t.utcoffset() == chatham.utcoffset(None) for t in history["at"])
    # the same minutes as the CLI prints for the entry
    res = subprocess.run([sys.executable, "-c", CLI, "suppression", "show", "full@docomo.ne.jp"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert entry["first_error"].strftime("%Y-%m-%d %H:%M") in res.stdout
    assert history["at"].iloc[0].strftime("%Y-%m-%d %H:%M") in res.stdout


nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = REPO / "notebooks" / "explore_bounces.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "ja"])
def test_notebook_runs_on_sample_data(tmp_path, monkeypatch, lang):
    cfg = load_config(None, data_dir=tmp_path / "data", timezone="Asia/Tokyo")
    ingest(cfg, sorted((SAMPLES / "postfix").glob("mail.log*"))
           + [SAMPLES / "sendmail" / "maillog", SAMPLES / "qmail" / "current"], progress=False)
    assert run_rule(SuppressionStore(cfg.data_dir), cfg.rule, cfg.guard, "2026-11-30", tz=cfg.timezone_name).applied
    monkeypatch.setenv("MAILHYGIENE_DATA_DIR", str(cfg.data_dir))
    monkeypatch.setenv("MAILHYGIENE_TIMEZONE", "Asia/Tokyo")
    monkeypatch.delenv("MAILHYGIENE_ADDRESS", raising=False)
    monkeypatch.setenv("MAILHYGIENE_LANG", lang)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # also prove the kernel is this environment's Python (the kernelspec's "python" is replaced
    # by sys.executable of the process that starts the kernel)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert f"data: {cfg.data_dir.resolve()}" in text
    assert "+09:00" in text and "+00:00" not in text          # the entry's and its history's times: Asia/Tokyo
    assert "period: 2026-11-09 .. 2026-11-20" in text
    assert "full@docomo.ne.jp" in text                       # the address shown in sections 4 and 5
    assert "2 of the 2 events behind the entry are in the store" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4                                  # bounce rates, hours, reasons, list growth
    if lang == "ja":                                         # Japanese headers and carrier names
        assert "宛先不明率" in text and "ドコモ" in text and "unknown-user rate" not in text
    else:
        assert "unknown-user rate" in text and "宛先不明率" not in text
    assert Path(nb.cells[-1].outputs[0]["text"].strip()).resolve() == Path(sys.executable).resolve()


@pytest.mark.slow
def test_notebook_runs_on_a_store_where_every_attempt_was_delivered(tmp_path, monkeypatch):
    """A healthy list: no suppression entry and no undelivered attempt. Section 4 then shows the
    most attempted address (it looked for the address with the most undelivered attempts only,
    and stopped with IndexError, leaving the sections after it unrun)."""
    log = tmp_path / "mail.log"
    log.write_text("".join(
        f"Nov 10 09:00:0{i} mx1 postfix/smtp[3]: 1A2B3C4D0{i}: to=<{who}@docomo.ne.jp>, "
        "relay=mfsmax.docomo.ne.jp[203.138.181.112]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=2.0.0, status=sent (250 ok)\n"
        for i, who in enumerate(["taro", "hanako", "hanako"])))
    cfg = load_config(None, data_dir=tmp_path / "data", timezone="Asia/Tokyo")
    ingest(cfg, [log], fmt="postfix", year=2026, progress=False)
    monkeypatch.setenv("MAILHYGIENE_DATA_DIR", str(cfg.data_dir))
    monkeypatch.setenv("MAILHYGIENE_TIMEZONE", "Asia/Tokyo")
    monkeypatch.delenv("MAILHYGIENE_ADDRESS", raising=False)
    monkeypatch.delenv("MAILHYGIENE_LANG", raising=False)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=120,
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "\n".join(o.get("text", "") for o in outputs)
    assert "hanako@docomo.ne.jp" in text and "is not on the suppression list" in text
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == 4
