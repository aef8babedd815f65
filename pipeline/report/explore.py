"""The helpers of notebooks/explore_bounces.ipynb: its configuration from the environment, and
stored times (UTC) shown in the configured zone, as the CLI and the report show them.

- notebook_config(): the config the CLI would use (MAILHYGIENE_CONFIG, else ./mailhygiene.toml,
  else /etc/mailhygiene/mailhygiene.toml), with MAILHYGIENE_DATA_DIR and MAILHYGIENE_TIMEZONE
  over it (environment > file, as for the CLI's global options); without a config file and
  without MAILHYGIENE_DATA_DIR the data dir is `default_data_dir` (the demo's).
- local_frame(rows, tz) / local_entry(entry, tz): a suppression entry's and its history's
  times (added_at, first_error, last_error, at: stored in UTC) in the zone `tz`.

Reads the environment and the config file only; called by the notebook (and its tests).
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
