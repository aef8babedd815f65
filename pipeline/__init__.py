"""mailhygiene: keep bulk mail to Japanese mobile carriers deliverable.

Library entry points (the CLI and notebooks call these):
  pipeline.connect(data_dir=None)   DuckDB connection with an `events` view over the event store
                                    (every node of the lake when the config sets [store] url)
  pipeline.config.load_config()     effective configuration
"""

__version__ = "0.1.0"


def connect(data_dir=None, *, config=None):
    """A DuckDB connection with views `events` (and `suppression` when a list exists).

    With `[store] url` in the config, `events` holds every node's events from the lake, each
    event once (docs/scale-out.md), and has a `node` column.
    """
    from .store.warehouse import connect as _connect, resolve_config

    config = resolve_config(data_dir, config)
    if config.store.url:
        from .lake.read import use_lake

        use_lake(config)
    return _connect(config=config)
