"""The helpers of notebooks/explore_bounces.ipynb: its configuration from the environment, and
stored times (UTC) shown in the configured zone, as the CLI and the report show them.

- notebook_config(): the config the CLI would use (MAILHYGIENE_CONFIG, else ./mailhygiene.toml,
  else /etc/mailhygiene/mailhygiene.toml), with MAILHYGIENE_DATA_DIR and MAILHYGIENE_TIMEZONE
  over it (environment > file, as for the CLI's global options); without a config file and
  without MAILHYGIENE_DATA_DIR the data dir is `default_data_dir` (the demo's).
- connect(cfg): DuckDB over the data dir with the rule's bounce-mail binding kept, so that the
  notebook's own queries over `attempts` count what the report, `suppression show` and the rule
  count (no unbound, forged bounce mail's row).
- local_frame(rows, tz) / local_entry(entry, tz): a suppression entry's and its history's
  times (added_at, first_error, last_error, at: stored in UTC) in the zone `tz`.

Reads the environment, the config file and (connect) the data dir; called by the notebook (and
its tests).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Iterable, Mapping

import pandas as pd

from ..core.config import Config, load_config


def notebook_config(default_data_dir: str | os.PathLike = "../demo-data") -> Config:
    """The effective config of the notebook (see the module docstring); data_dir resolved."""
    path = os.environ.get("MAILHYGIENE_CONFIG") or None
    data_dir = os.environ.get("MAILHYGIENE_DATA_DIR") or None
    timezone = os.environ.get("MAILHYGIENE_TIMEZONE") or None
    cfg = load_config(path, data_dir=data_dir, timezone=timezone)
    if data_dir is None and cfg.source is None:
        data_dir = default_data_dir
    return load_config(cfg.source, data_dir=os.path.abspath(data_dir or cfg.data_dir), timezone=timezone)


def connect(cfg: Config):
    """pipeline.connect(config=cfg), with the binding of the bounce mails and the counted errors
    kept as the report keeps them (suppression.counted.keep_counted_errors, the rule's settings,
    every stored row): its `attempts` leave out each bounce mail's row not bound to mail we sent
    (`witnessed_events` marks it 'unbound'), and table `counted_errors` is the rule's."""
    from ..lake.read import use_lake
    from ..store.warehouse import connect as connect_store
    from ..suppression.counted import counted_params, keep_counted_errors

    if cfg.store.url:  # every node's events from the lake, as pipeline.connect() reads them
        use_lake(cfg)
    con = connect_store(config=cfg)
    keep_counted_errors(con, counted_params(cfg.timezone_name, cfg.rule.counted_reasons, cfg.rule.window_days))
    return con


def _local(value: Any, tz: dt.tzinfo) -> Any:
    """A timezone-aware time in `tz`; anything else as it is (a naive time is the SQL's local one)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return pd.Timestamp(value).tz_convert(tz)
    return value


def local_entry(entry: Mapping[str, Any], tz: dt.tzinfo) -> pd.Series:
    """A suppression entry (suppression.store.show()["entry"]) with its times in `tz`."""
    return pd.Series({k: _local(v, tz) for k, v in entry.items()}, dtype=object)


def local_frame(rows: Iterable[Mapping[str, Any]], tz: dt.tzinfo) -> pd.DataFrame:
    """Rows (an entry's history, entries) as a DataFrame with every stored time in `tz`."""
    return pd.DataFrame([{k: _local(v, tz) for k, v in row.items()} for row in rows])
