"""CLI group `lake`: the shared event lake of many MTA nodes (docs/scale-out.md).

`lake status` (what the lake holds, per node), `lake upload` (this node's sealed files now) and
`lake compact` (merge this node's closed days). Thin layer over pipeline.lake.
"""

from __future__ import annotations

import json

import click


def _lake(cfg):
    from ..core.errors import ConfigError
    from ..lake.url import lake_of

    lake = lake_of(cfg)
    if lake is None:
        raise ConfigError("no lake configured: set [store] url = \"s3://bucket/prefix\" (or a directory) "
                          "in the config file (docs/scale-out.md)")
    return lake


@click.group("lake")
def lake_group():
    """The shared event lake: status, upload, compaction (docs/scale-out.md)."""


@lake_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def lake_status(app, as_json):
    """Objects, days and bytes per node under [store] url.

    \b
    Example:
      mailhygiene --config central.toml lake status
    """
    from ..lake.read import list_objects
    from ..lake.upload import node_claims

    lake = _lake(app.cfg)
    nodes: dict[str, dict] = {}
    for o in list_objects(lake):
        n = nodes.setdefault(o.node, {"objects": 0, "bytes": 0, "days": set()})
        n["objects"] += 1
        n["bytes"] += o.size
        n["days"].add(o.day)
    claims = node_claims(lake)
    out = {name: {"objects": n["objects"], "bytes": n["bytes"], "days": len(n["days"]),
                  "first_day": min(n["days"]), "last_day": max(n["days"]),
                  "timezone": claims.get(name, {}).get("timezone") or None} for name, n in sorted(nodes.items())}
    zone = app.cfg.timezone_name
    # a node reading its logs in another zone stores every time hours off (docs/scale-out.md)
    other = {name: n["timezone"] for name, n in out.items() if n["timezone"] and n["timezone"] != zone}
    if as_json:
        click.echo(json.dumps({"lake": lake.url, "nodes": out}, indent=2))
    else:
        click.echo(f"lake {lake.url}: {len(out)} node(s)")
        for name, n in out.items():
            click.echo(f"  {name:16} {n['objects']:6} objects {n['bytes']:>14,} bytes  {n['days']:4} days "
                       f"{n['first_day']} .. {n['last_day']}  {n['timezone'] or '(zone not known)'}")
    for name, tz in other.items():
        app.problem(f"warning: node {name} reads its logs in {tz}, this config in {zone}: every node must use the "
                    "zone of the MTA clocks (timezone = ...), or its events' times are hours off")


@lake_group.command("upload")
@click.option("--take-over", is_flag=True,
              help="This host replaces the one that holds its store.node name in the lake (rebuilt, or its "
                   "data dir moved): the name's claim becomes this data dir's.")
@click.pass_obj
def lake_upload(app, take_over):
    """Upload this node's sealed event files that the lake does not have yet (create-only).

    `ingest`, `clean` and `watch` do this after each commit; this command is for a first upload
    of an existing store, or after the lake was unreachable. A node name is held by one host (a
    claim under <url>/_nodes/): another host given the same store.node is refused.

    \b
    Example:
      sudo -u mailhygiene mailhygiene lake upload
    """
    from ..lake.node import after_commit

    _lake(app.cfg)
    s = after_commit(app.cfg, strict=True, take_over=take_over)
    click.echo(f"uploaded {s.uploaded} file(s), {s.bytes:,} bytes; {s.already_there} already there; "
               f"{s.skipped_covered} covered by the lake; {s.filtered_rows} row(s) left out as already uploaded")


@lake_group.command("compact")
@click.pass_obj
def lake_compact(app):
    """Merge this node's objects of closed days (older than store.compact_after_days) into one per day.

    `clean` does this every night; this command is for doing it now.

    \b
    Example:
      sudo -u mailhygiene mailhygiene lake compact
    """
    from ..core.errors import ConfigError
    from ..lake.node import compact_node
    from ..lake.url import check_node

    cfg = app.cfg
    _lake(cfg)
    if not cfg.store.compact_after_days:
        raise ConfigError("store.compact_after_days is 0: compaction is off")
    check_node(cfg.store.node)
    s = compact_node(cfg)
    click.echo(f"compacted {len(s.days)} day(s): {s.objects_replaced} object(s) -> {len(s.days)}, "
               f"{s.rows_written:,} rows ({s.duplicate_rows_dropped} duplicate row(s) dropped)")
