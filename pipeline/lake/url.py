"""Where the event lake is: `[store] url` parsed into a filesystem, a root and object keys.

Reads the `[store]` settings (url, endpoint_url, region, node); writes nothing. The layout under
the root is

    <root>/events/node=<node>/date=YYYY-MM-DD/<file>.parquet

(`node=`, not `host=`: a hive reader would replace the syslog `host` column with a folder of
that name). The filesystem is pyarrow's: S3FileSystem for `s3://` (credentials from the usual AWS
environment variables, profile or instance role; `endpoint_url` for MinIO, Ceph RGW ...), the
local filesystem for a directory path (a shared mount). Called by lake.upload, lake.read,
lake.compact and lake.spark.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..core.config import Config, StoreSettings, mask_url
from ..core.errors import ConfigError

EVENTS_DIR = "events"
CLAIMS_DIR = "_nodes"
NODE_PREFIX = "node="
DATE_PREFIX = "date="
_NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.parquet$")


@dataclass(frozen=True)
class LakeLocation:
    """A lake root: `scheme` "s3" (bucket + prefix) or "file" (an absolute directory)."""

    scheme: str
    bucket: str            # "" for file
    prefix: str            # key prefix without leading/trailing "/" (s3), or the directory (file)
    endpoint_url: str = ""
    region: str = ""

    # ------------------------------------------------------------------ naming
    @property
    def url(self) -> str:
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return self.prefix

    @property
    def root(self) -> str:
        """The root as a path of `filesystem()` (pyarrow S3 paths are "bucket/key")."""
        if self.scheme == "s3":
            return f"{self.bucket}/{self.prefix}".rstrip("/")
        return self.prefix

    @property
    def events_root(self) -> str:
        return f"{self.root}/{EVENTS_DIR}"

    def key(self, node: str, day: str, name: str) -> str:
        """The object key (s3: without the bucket) or path (file) of one event file."""
        check_node(node)
        if not _DAY_RE.match(day):
            raise ValueError(f"not a day: {day!r}")
        if not _FILE_RE.match(name):
            raise ValueError(f"not an event file name: {name!r}")
        rel = f"{EVENTS_DIR}/{NODE_PREFIX}{node}/{DATE_PREFIX}{day}/{name}"
        if self.scheme == "s3":
            return f"{self.prefix}/{rel}" if self.prefix else rel
        return f"{self.prefix}/{rel}"

    def claim_key(self, node: str) -> str:
        """The key (s3: without the bucket) or path (file) of the object that says which host
        uses a node name (lake.upload: one host per name)."""
        rel = f"{CLAIMS_DIR}/{NODE_PREFIX}{check_node(node)}.json"
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def path(self, key: str) -> str:
        """A key as a path of `filesystem()`."""
        return f"{self.bucket}/{key}" if self.scheme == "s3" else key

    # ------------------------------------------------------------------ access
    @property
    def effective_region(self) -> str:
        return self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    def filesystem(self):
        """pyarrow's filesystem for this lake (reads and listings)."""
        from pyarrow import fs

        if self.scheme == "file":
            return fs.LocalFileSystem()
        kw = {"region": self.effective_region}
        if self.endpoint_url:
            u = urlparse(self.endpoint_url)
            kw.update(endpoint_override=u.netloc, scheme=u.scheme or "https")
        return fs.S3FileSystem(**kw)

    def filesystem_options(self) -> dict:
        """What a Spark executor needs to build the same filesystem (picklable, no secrets:
        executors take credentials from their own environment, as the driver does)."""
        return {"scheme": self.scheme, "bucket": self.bucket, "prefix": self.prefix,
                "endpoint_url": self.endpoint_url, "region": self.region}


def check_node(node: str) -> str:
    if not node or not _NODE_RE.match(node):
        raise ConfigError(f"store.node {node!r} is not a usable node name: use letters, digits, '.', '_' "
                          "or '-' (at most 63), e.g. node = \"mta01\"")
    return node


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def masked(url: str) -> str:
    """A url as it may be shown (core.config.mask_url: the one rule, as `config show` shows it)."""
    return mask_url(url, query=True)


def _refuse_credentials(name: str, url: str) -> None:
    """A key or password in store.url / store.endpoint_url is refused: botocore and pyarrow sign
    with the AWS credentials, never with a url's user part (pyarrow even reads it as the host
    name), and the url is printed in messages and logs, so the secret would only leak."""
    if _USERINFO.match(url):
        raise ConfigError(f"{name} {masked(url)!r} has credentials in it (before '@'): they would be printed "
                          "in messages and logs, and are not used to sign requests. Remove them and give them the "
                          "AWS way: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment, AWS_PROFILE "
                          "with ~/.aws/credentials, or the instance / pod role")


def parse_url(url: str, *, endpoint_url: str = "", region: str = "", base: Path | None = None) -> LakeLocation:
    """`s3://bucket/prefix` or a directory path (relative paths are relative to `base`)."""
    url = url.strip()
    if not url:
        raise ConfigError("store.url is empty: set it to s3://bucket/prefix or a directory")
    _refuse_credentials("store.url", url)
    if endpoint_url:
        _refuse_credentials("store.endpoint_url", endpoint_url.strip())
    if url.startswith("s3://"):
        u = urlparse(url)
        bucket, prefix = u.netloc, u.path.strip("/")
        if not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
            raise ConfigError(f"store.url {masked(url)!r}: {bucket!r} is not an S3 bucket name "
                              "(3-63 lower-case letters, digits, '.' or '-')")
        if u.query or u.fragment or "//" in prefix:
            raise ConfigError(f"store.url {masked(url)!r}: use s3://bucket/prefix without ?, # or empty path parts")
        if endpoint_url and not re.match(r"^https?://[^/\s]+/?$", endpoint_url):
            raise ConfigError(f"store.endpoint_url {masked(endpoint_url)!r}: use http(s)://host:port, e.g. http://127.0.0.1:9000")
        return LakeLocation("s3", bucket, prefix, endpoint_url.rstrip("/"), region)
    if "://" in url and not url.startswith("file://"):
        scheme = url.split("://", 1)[0]
        raise ConfigError(f"store.url {masked(url)!r}: the {scheme}:// scheme is not supported; use s3://bucket/prefix "
                          "(any S3-compatible server with store.endpoint_url) or a directory path")
    path = Path(url[len("file://"):] if url.startswith("file://") else url).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return LakeLocation("file", "", str(path.resolve()).rstrip("/"), "", "")


def lake_from_settings(store: StoreSettings, base: Path | None = None) -> LakeLocation | None:
    """The lake of `[store]`, or None when no url is set (local only, as before)."""
    if not store.url:
        return None
    return parse_url(store.url, endpoint_url=store.endpoint_url, region=store.region, base=base)


def lake_of(cfg: Config) -> LakeLocation | None:
    """The configured lake (relative directory urls are relative to the config file)."""
    return lake_from_settings(cfg.store, cfg.source.parent if cfg.source else None)
