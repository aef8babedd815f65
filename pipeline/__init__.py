"""mailhygiene: keep bulk mail to Japanese mobile carriers deliverable.

Library entry points (the CLI and notebooks call these):
  pipeline.connect(data_dir=None)   DuckDB connection with an `events` view over the event store
  pipeline.config.load_config()     effective configuration
"""

__version__ = "0.1.0"


def connect(data_dir=None, *, config=None):
    """A DuckDB connection with views `events` (and `suppression` when a list exists)."""
    from .store.warehouse import connect as _connect

    return _connect(data_dir, config=config)
