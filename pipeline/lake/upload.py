"""Upload a node's sealed event files to the lake, create-only.

Reads the local event store (<data_dir>/events/date=*/part-*.parquet: every visible file there is
sealed, since the store publishes a file by rename only when it is complete and never changes it)
and the node's upload ledger <data_dir>/lake/uploaded-<hash of url and node>.json; writes objects
<root>/events/node=<node>/date=<day>/<file name> through lake.objects (create-only: a retry is
harmless, a differing existing object is a LakeConflict) and then the ledger (atomically).

One subtlety: a local compaction (`watch` merges the small files of a day) replaces files that
may be uploaded already by one file that holds their rows again. A new file of a day whose
uploaded files have vanished locally is therefore uploaded only with the rows whose event ids the
node's objects of that day do not hold yet (read from the lake, excluding the object itself, so
a retry builds the same bytes). Readers remove duplicate ids anyway (lake.read);
this keeps the lake from growing with copies. The ledger then forgets the vanished names: it
lists the files the store holds, not every file it ever held (a `watch` committing every 5 s
makes 17,280 files a day; the ledger, rewritten after each object, once kept them all).

Called after each commit by `ingest`, `clean` and `watch` (when `[store] url` is set), and by
tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import Config
from ..core.errors import LakeConflict, LakeError
from ..core.fsutil import atomic_write_json, atomic_write_text, ensure_dir, file_lock
from ..store.event_store import SMALL_FILE_BYTES, EventStore
from .objects import file_digests, writer_for
from .url import DATE_PREFIX, LakeLocation, check_node, lake_of

STATE_DIR = "lake"
NODE_ID_FILE = "node-id"  # this data dir's identity in the lake's node claims (made once)
# (lake url, node, node id) whose claim was found to be this data dir's in this process
_CLAIMED: set[tuple[str, str, str]] = set()
# (lake url, node, day) -> {object path: its event ids}, most recently used last (_lake_ids)
_OBJECT_IDS: OrderedDict[tuple[str, str, str], dict] = OrderedDict()
_CACHED_DAYS = 2  # watch writes today (and yesterday, around midnight UTC): ~24 bytes an event kept


@dataclass
class UploadSummary:
    uploaded: int = 0          # objects created
    already_there: int = 0     # the same bytes were in the lake already (a retry)
    skipped_covered: int = 0   # local compaction products whose rows were all in the lake
    filtered_rows: int = 0     # rows left out because the lake held their event ids already
    bytes: int = 0
    keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"uploaded": self.uploaded, "already_there": self.already_there,
                "skipped_covered": self.skipped_covered, "filtered_rows": self.filtered_rows,
                "bytes": self.bytes}


class Uploader:
    """Uploads what the ledger does not list yet. One per (data dir, lake, node)."""

    def __init__(self, data_dir: str | os.PathLike, lake: LakeLocation, node: str, *, writer=None,
                 take_over: bool = False, timezone: str = ""):
        self.data_dir = Path(data_dir)
        self.timezone = timezone  # the zone this node reads its logs in (shown by `lake status`)
        self.take_over = take_over
        self.store = EventStore(data_dir)
        self.lake = lake
        self.node = check_node(node)
        self.writer = writer or writer_for(lake)
        tag = hashlib.sha256(f"{lake.url}\0{node}".encode()).hexdigest()[:12]
        self.state_dir = Path(data_dir) / STATE_DIR
        self.ledger_path = self.state_dir / f"uploaded-{tag}.json"

    # ------------------------------------------------------------------ ledger
    def _load(self) -> dict:
        try:
            data = json.loads(self.ledger_path.read_text())
        except FileNotFoundError:
            return {"lake": self.lake.url, "node": self.node, "days": {}}
        except (OSError, ValueError) as exc:
            raise LakeError(f"the upload ledger {self.ledger_path} is unreadable ({exc}); delete it to "
                            "re-check every file against the lake (create-only uploads make that safe)") from None
        for uploaded in data.get("days", {}).values():  # a ledger of earlier versions kept them, marked
            for n in [n for n, rec in uploaded.items() if rec.get("gone")]:
                del uploaded[n]
        return data

    def _save(self, ledger: dict) -> None:
        atomic_write_json(self.ledger_path, ledger)

    # ------------------------------------------------------------------ the pass
    def run(self, *, merge: bool = False) -> UploadSummary:
        """Upload every sealed local file not uploaded yet; returns what happened. `merge`
        (`watch`, which uploads at most every [store] upload_interval): a day's small files are
        merged locally first when two or more of them are new, so one object carries them."""
        summary = UploadSummary()
        with self.lock():
            ledger = self._load()
            days = ledger.setdefault("days", {})
            local = self._sealed_files()
            if merge and self._merge_new(local, days):
                local = self._sealed_files()
            pending = {day: names for day, names in local.items()
                       if any(n not in days.get(day, {}) for n in names)}
            if not pending:
                return summary
            self.writer.check_create_only(self.node)
            self._claim_node()
            for day in sorted(pending):
                uploaded = days.setdefault(day, {})
                present = local[day]
                vanished = [n for n in uploaded if n not in present]
                for name in sorted(n for n in present if n not in uploaded):
                    path = present[name]
                    if not path.is_file():
                        continue  # compacted away since the listing: its product comes next pass
                    key = self.lake.key(self.node, day, name)
                    if vanished:
                        rec = self._upload_filtered(day, key, path, summary)
                    else:
                        rec = self._upload_file(key, path, summary)
                    uploaded[name] = rec
                    self._save(ledger)  # after each object: a kill repeats at most one (harmless)
                for n in vanished:  # forgotten: a name never comes back, and the lake's objects
                    del uploaded[n]  # keep the rows (so the ledger holds the stored files only)
                self._save(ledger)
        return summary

    def not_uploaded(self) -> dict[str, int]:
        """day -> how many of its stored files the ledger does not list as uploaded (`prune`
        keeps those days: deleting them would lose their events from the lake for good). Read
        without the store's lock (prune holds it when it checks again)."""
        days = self._load().get("days", {})
        out: dict[str, int] = {}
        for f in self.store.files():
            day = f.parent.name[len(DATE_PREFIX):]
            if f.name not in days.get(day, {}):
                out[day] = out.get(day, 0) + 1
        return out

    # ------------------------------------------------------------------ one host per node name
    def claim(self) -> None:
        """Make sure this data dir holds its node name in the lake (before compacting: another
        host given the same name must not merge and delete this one's objects)."""
        ensure_dir(self.state_dir)
        self.writer.check_create_only(self.node)
        self._claim_node()

    def lock(self):
        """The lock of this node's writes to the lake: uploads, and compaction (which deletes
        objects an upload may be reading the ids of)."""
        ensure_dir(self.state_dir)
        return file_lock(self.state_dir / "upload.lock", wait=600,
                         busy=f"another upload to {self.lake.url} is still running")

    def _identity(self) -> dict:
        """This data dir's claim on its node name: a random id made once and kept in the data dir
        (a host cloned with its data dir would share it: give the clone a new data dir), and,
        for the message another host gets, the host name and data dir."""
        path = self.state_dir / NODE_ID_FILE
        try:
            ident = path.read_text().strip()
        except FileNotFoundError:
            ident = ""
        if not ident:
            import uuid

            ident = uuid.uuid4().hex
            atomic_write_text(path, ident + "\n")
        return {"node": self.node, "id": ident, "host": socket.gethostname(), "data_dir": str(self.data_dir.resolve()),
                "timezone": self.timezone}

    def _claim_node(self) -> None:
        """Make sure no other host uploads under this node name: the claim object
        <root>/_nodes/node=<node>.json is created once (create-only) with this data dir's id; a
        claim with another id is a LakeConflict that names the host holding the name. Two hosts
        given one name otherwise mixed their objects in one node= prefix unnoticed (part names
        are random, so no object ever conflicted), each compacting and reading the other's.
        `take_over`: this data dir replaces the one that holds the claim (a host rebuilt)."""
        me = self._identity()
        done = (self.lake.url, self.node, me["id"])
        if done in _CLAIMED:
            return
        key = self.lake.claim_key(self.node)
        if self.take_over:
            held = self._read_claim(key)
            if held is not None and held.get("id") != me["id"]:
                self.writer.delete([key])
        with tempfile.TemporaryDirectory(dir=self.state_dir) as tmp:
            mine = Path(tmp) / "claim.json"
            mine.write_text(json.dumps(me, sort_keys=True) + "\n")
            try:
                self.writer.put_if_absent(key, mine)
            except LakeConflict:
                held = self._read_claim(key)
                if held is not None and held.get("id") == me["id"]:  # ours: a renamed host, a new zone
                    self.writer.delete([key])
                    self.writer.put_if_absent(key, mine)
                else:
                    who = (f"host {held.get('host')!r} (data dir {held.get('data_dir')})" if held
                           else "another host (its claim is unreadable)")
                    raise LakeConflict(
                        f"store.node {self.node!r} is already used in the lake {self.lake.url} by {who}: nothing "
                        "was uploaded. Give each MTA host its own store.node. If this host replaces that one "
                        "(rebuilt, or its data dir moved), run `mailhygiene lake upload --take-over` once") from None
        _CLAIMED.add(done)

    def _read_claim(self, key: str) -> dict | None:
        try:
            with self.lake.filesystem().open_input_stream(self.lake.path(key)) as fh:
                return json.loads(fh.read(1 << 16))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LakeError(f"cannot read the node claim {key} in the lake: {exc}") from None

    def _merge_new(self, local: dict, days: dict) -> bool:
        """Merge the small files of each day with two or more files not uploaded yet (the store's
        own crash-safe compaction: the merged file replaces them, and the rows the lake already
        holds are left out when it is uploaded); True when a day was merged."""
        merged = False
        for day, names in local.items():
            if sum(1 for n in names if n not in days.get(day, {})) >= 2:
                merged |= self.store.compact(day, min_files=2, max_file_bytes=SMALL_FILE_BYTES)
        return merged

    def _sealed_files(self) -> dict[str, dict[str, Path]]:
        """day -> {file name: path} of the published files, listed under the store's lock (which
        also finishes an interrupted compaction, so no half-replaced day is listed)."""
        out: dict[str, dict[str, Path]] = {}
        if self.store.is_empty():
            return out
        with self.store.lock():
            for f in self.store.files():
                day = f.parent.name[len(DATE_PREFIX):]
                out.setdefault(day, {})[f.name] = f
        return out

    def _upload_file(self, key: str, path: Path, summary: UploadSummary) -> dict:
        sha256, size = file_digests(path)
        outcome = self.writer.put_if_absent(key, path, sha256)
        self._count(outcome, key, size, summary)
        return {"key": key, "sha256": sha256, "size": size}

    def _upload_filtered(self, day: str, key: str, path: Path, summary: UploadSummary) -> dict:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        known = self._lake_ids(day, exclude=key)
        if known is not None and len(known):
            keep = pc.invert(pc.is_in(table.column("event_id"), value_set=known))
            filtered = table.filter(keep)
        else:
            filtered = table
        summary.filtered_rows += table.num_rows - filtered.num_rows
        if filtered.num_rows == 0:
            summary.skipped_covered += 1
            return {"key": None, "covered": True}
        if filtered.num_rows == table.num_rows:
            return self._upload_file(key, path, summary)
        from ..store.event_store import WRITE_OPTIONS

        with tempfile.TemporaryDirectory(dir=self.state_dir) as tmp:
            part = Path(tmp) / path.name
            pq.write_table(filtered, part, **WRITE_OPTIONS)
            return self._upload_file(key, part, summary)

    def _lake_ids(self, day: str, exclude: str):
        """The event ids of this node's objects of `day` in the lake (all but `exclude`).

        Each object is read once per process: an object never changes under its name
        (create-only), so its ids are kept (_OBJECT_IDS, the last two days) and a later call
        reads only the objects listed since. `watch` merges a day's small files every ~17
        commits, and each merged file comes here: reading every object of the day each time
        made a day of 5-second commits cost the square of its 17,280 objects."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        from pyarrow import fs as pafs

        filesystem = self.lake.filesystem()
        folder = self.lake.path(self.lake.key(self.node, day, "x.parquet")).rsplit("/", 1)[0]
        try:
            infos = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        except OSError as exc:
            raise LakeError(f"cannot list {folder} in the lake: {exc}") from None
        skip = self.lake.path(exclude)
        listed = [info.path for info in infos
                  if info.type == pafs.FileType.File and info.base_name.endswith(".parquet")
                  and not info.base_name.startswith(".") and info.path != skip]
        cache_key = (self.lake.url, self.node, day)
        known = _OBJECT_IDS.pop(cache_key, {})
        known = {path: known[path] for path in listed if path in known}  # deleted objects leave
        for path in listed:
            if path not in known:
                known[path] = pq.read_table(path, columns=["event_id"], filesystem=filesystem) \
                    .column("event_id").cast(pa.string()).combine_chunks()
        _OBJECT_IDS[cache_key] = known
        while len(_OBJECT_IDS) > _CACHED_DAYS:
            _OBJECT_IDS.popitem(last=False)
        chunks = [known[path] for path in listed]
        if not chunks:
            return None
        return pa.chunked_array(chunks, type=pa.string()).combine_chunks()

    @staticmethod
    def _count(outcome: str, key: str, size: int, summary: UploadSummary) -> None:
        if outcome == "created":
            summary.uploaded += 1
            summary.bytes += size
            summary.keys.append(key)
        else:
            summary.already_there += 1


def node_claims(lake: LakeLocation) -> dict[str, dict]:
    """node -> its claim (host, data dir, timezone) for every node name claimed in the lake."""
    from pyarrow import fs as pafs

    filesystem = lake.filesystem()
    folder = lake.path(lake.claim_key("x")).rsplit("/", 1)[0]
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    except OSError as exc:
        raise LakeError(f"cannot list the node claims of {lake.url}: {exc}") from None
    out = {}
    for info in infos:
        name = info.base_name
        if info.type == pafs.FileType.File and name.startswith("node=") and name.endswith(".json"):
            try:
                with filesystem.open_input_stream(info.path) as fh:
                    out[name[len("node="):-len(".json")]] = json.loads(fh.read(1 << 16))
            except (OSError, ValueError):
                continue
    return out


def not_uploaded(cfg: Config) -> dict[str, int]:
    """day -> this node's stored files of that day not uploaded to the lake yet; {} when no lake
    is configured (or the data dir is the central machine's, without store.node)."""
    lake = lake_of(cfg)
    if lake is None or not cfg.store.node:
        return {}
    return Uploader(cfg.data_dir, lake, cfg.store.node).not_uploaded()


def upload_sealed(cfg: Config, *, merge: bool = False, take_over: bool = False) -> UploadSummary | None:
    """Upload this node's new sealed files when `[store] url` is set (else None: local only);
    `merge`: see Uploader.run; `take_over`: see Uploader._claim_node."""
    lake = lake_of(cfg)
    if lake is None:
        return None
    if not cfg.store.node:
        raise LakeError("store.url is set but store.node is not: give this MTA host a name in the lake, "
                        "e.g. node = \"mta01\" under [store]")
    return Uploader(cfg.data_dir, lake, cfg.store.node, take_over=take_over,
                    timezone=cfg.timezone_name).run(merge=merge)
