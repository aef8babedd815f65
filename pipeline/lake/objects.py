"""Create-only object writes: the one way anything is put into the lake.

`put_if_absent(key, file)` makes the object appear whole or not at all, and never replaces an
existing object: if the key exists with the same bytes (sha256 in the object's metadata) it
answers "same" (a retry is harmless); with other bytes it raises LakeConflict.

Why not pyarrow for writes: pyarrow's S3FileSystem cannot send `If-None-Match` (apache/arrow
#44281), and its output stream completes a multipart upload from its destructor ("Close rather
than Abort"), so a writer that dies on an exception can publish a truncated object. Here:

- s3: botocore (boto3, the `.[s3]` extra) `PutObject` with `If-None-Match: *` and `Content-MD5`
  (the server rejects a body that arrived damaged); above `multipart_threshold` a multipart
  upload whose parts carry `Content-MD5` and whose `CompleteMultipartUpload` carries
  `If-None-Match: *`, aborted on any error. A killed process leaves at most an incomplete
  multipart upload, which is invisible and which the bucket's lifecycle rule
  (AbortIncompleteMultipartUpload, docs/scale-out.md) deletes. `check_create_only()` proves once
  per writer that the server honours the condition (older S3-compatible servers ignore it):
  fail closed otherwise.
- file (a shared directory): the bytes go to a dot-temp file in the target directory, are
  fsync'd, then `os.link`ed to the final name, which fails if the name exists (atomic, create-only).

Called by lake.upload and lake.compact.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import uuid
from pathlib import Path

from ..core.errors import LakeConflict, LakeError
from .url import LakeLocation

CHUNK = 8 << 20
MULTIPART_THRESHOLD = 512 << 20
PART_SIZE = 64 << 20
PROBE_DIR = "_probe"
CONTENT_TYPE = "application/vnd.apache.parquet"


def file_digests(path: str | os.PathLike, *, md5: bool = False):
    """(sha256 hex, size) of a file; with md5=True (sha256 hex, size, Content-MD5 base64)."""
    h = hashlib.sha256()
    m = hashlib.md5() if md5 else None
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            if m is not None:
                m.update(chunk)
            size += len(chunk)
    if m is not None:
        return h.hexdigest(), size, base64.b64encode(m.digest()).decode()
    return h.hexdigest(), size


def writer_for(lake: LakeLocation, **kw) -> "S3Writer | LocalWriter":
    return S3Writer(lake, **kw) if lake.scheme == "s3" else LocalWriter(lake)


# --------------------------------------------------------------------------- shared directory
class LocalWriter:
    def __init__(self, lake: LakeLocation):
        self.lake = lake

    def check_create_only(self, node: str = "probe") -> None:
        """os.link never replaces a name: nothing to prove."""

    def put_if_absent(self, key: str, source: str | os.PathLike, sha256: str | None = None) -> str:
        sha256 = sha256 or file_digests(source)[0]
        final = Path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.parent / f".{final.name}.{uuid.uuid4().hex[:12]}.tmp"
            with open(source, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
                dst.flush()
                os.fsync(dst.fileno())
            try:
                os.link(tmp, final)
            except FileExistsError:
                return self._compare(final, sha256)
            finally:
                tmp.unlink(missing_ok=True)
            _fsync_dir(final.parent)
        except OSError as exc:
            raise LakeError(f"cannot write {final} in the lake: {exc.strerror or exc}") from None
        return "created"

    def _compare(self, final: Path, sha256: str) -> str:
        if file_digests(final)[0] == sha256:
            return "same"
        raise LakeConflict(f"{final} already exists in the lake with different content; nothing was "
                           "overwritten. Does another node use the same store.node name?")

    def delete(self, keys: list[str]) -> None:
        for k in keys:
            Path(k).unlink(missing_ok=True)
        for parent in {Path(k).parent for k in keys}:
            if parent.is_dir():
                _fsync_dir(parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- S3
def s3_client(lake: LakeLocation):
    """A botocore S3 client for the lake: credentials the usual AWS way (environment, profile,
    instance role); path-style addressing for a custom endpoint (MinIO, Ceph RGW)."""
    try:
        import boto3
        from botocore.config import Config as BotoConfig
    except ImportError:
        raise LakeError("uploading to s3:// needs boto3 for create-only (If-None-Match) writes: "
                        "pip install 'mailhygiene[s3]'") from None
    kw = {"retries": {"max_attempts": 5, "mode": "standard"}, "connect_timeout": 10, "read_timeout": 120}
    if lake.endpoint_url:
        kw["s3"] = {"addressing_style": "path"}
    try:  # no CRC trailers by default: S3-compatible servers differ; Content-MD5 is universal
        config = BotoConfig(request_checksum_calculation="when_required",
                            response_checksum_validation="when_required", **kw)
    except TypeError:  # botocore older than 1.36 has neither setting (nor the new default)
        config = BotoConfig(**kw)
    return boto3.session.Session().client("s3", endpoint_url=lake.endpoint_url or None,
                                          region_name=lake.effective_region, config=config)


def _error_code(exc) -> tuple[int, str]:
    resp = getattr(exc, "response", None) or {}
    return (int(resp.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0),
            str(resp.get("Error", {}).get("Code") or ""))


class S3Writer:
    def __init__(self, lake: LakeLocation, *, multipart_threshold: int = MULTIPART_THRESHOLD,
                 part_size: int = PART_SIZE, client=None):
        self.lake = lake
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.client = client or s3_client(lake)
        self._checked = False

    # ------------------------------------------------------------------ the condition
    def check_create_only(self, node: str = "probe") -> None:
        """Prove that the server refuses to replace an object under If-None-Match (once per writer)."""
        if self._checked:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        key = "/".join(p for p in (self.lake.prefix, PROBE_DIR, f"node={node}") if p)
        body = b"create-only probe\n"
        try:
            for attempt in range(2):  # the first may find the key from an earlier run: both fine
                try:
                    self.client.put_object(Bucket=self.lake.bucket, Key=key, Body=body, IfNoneMatch="*",
                                           ContentMD5=_md5_b64(body))
                except ClientError as exc:
                    if _error_code(exc)[0] == 412:
                        self._checked = True
                        return
                    raise
        except ClientError as exc:
            status, code = _error_code(exc)
            raise LakeError(f"the lake {self.lake.url} refused a test upload ({status} {code}): "
                            f"check the bucket, the credentials and store.endpoint_url") from None
        except BotoCoreError as exc:
            raise LakeError(f"cannot reach the lake {self.lake.url}: {exc}") from None
        raise LakeError(f"the S3 server of {self.lake.url} ignores If-None-Match (it replaced an existing "
                        "object): create-only uploads cannot be guaranteed, so nothing is uploaded. Use a "
                        "server with conditional writes (AWS S3; recent MinIO or Ceph RGW).")

    # ------------------------------------------------------------------ writing
    def put_if_absent(self, key: str, source: str | os.PathLike, sha256: str | None = None) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        digest, size, md5 = file_digests(source, md5=True)
        if sha256 is not None and sha256 != digest:
            raise LakeError(f"{source} changed while it was being uploaded (a sealed file must not change)")
        sha256 = digest
        for attempt in range(4):
            try:
                if size > self.multipart_threshold:
                    self._multipart(key, source, sha256, size)
                else:  # streamed from the file; the server checks the body against Content-MD5
                    with open(source, "rb") as fh:
                        self.client.put_object(Bucket=self.lake.bucket, Key=key, Body=fh, IfNoneMatch="*",
                                               ContentMD5=md5, ContentType=CONTENT_TYPE,
                                               Metadata={"sha256": sha256})
                return "created"
            except ClientError as exc:
                status, code = _error_code(exc)
                if status == 412 or code == "PreconditionFailed":
                    return self._compare(key, sha256, size)
                if status == 409 and attempt < 3:  # ConditionalRequestConflict: a racing write; try again
                    continue
                raise LakeError(f"uploading s3://{self.lake.bucket}/{key} failed: {status} {code} "
                                f"{exc.response.get('Error', {}).get('Message', '')}".rstrip()) from None
            except BotoCoreError as exc:
                raise LakeError(f"uploading s3://{self.lake.bucket}/{key} failed: {exc}") from None
        raise LakeError(f"uploading s3://{self.lake.bucket}/{key} kept conflicting with another writer")

    def _multipart(self, key: str, source, sha256: str, size: int) -> None:
        c, bucket = self.client, self.lake.bucket
        up = c.create_multipart_upload(Bucket=bucket, Key=key, ContentType=CONTENT_TYPE, Metadata={"sha256": sha256})
        upload_id = up["UploadId"]
        try:
            parts = []
            with open(source, "rb") as fh:
                number = 1
                while chunk := fh.read(self.part_size):
                    r = c.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                      Body=chunk, ContentMD5=_md5_b64(chunk))
                    parts.append({"ETag": r["ETag"], "PartNumber": number})
                    number += 1
            c.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, IfNoneMatch="*",
                                        MultipartUpload={"Parts": parts})
        except BaseException:
            try:  # never leave the parts behind when we are still alive to clean up
                c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except Exception:
                pass  # the lifecycle rule removes it
            raise

    def _compare(self, key: str, sha256: str, size: int) -> str:
        head = self.client.head_object(Bucket=self.lake.bucket, Key=key)
        if head.get("Metadata", {}).get("sha256") == sha256 and int(head.get("ContentLength", -1)) == size:
            return "same"
        raise LakeConflict(f"s3://{self.lake.bucket}/{key} already exists with different content; nothing was "
                           "overwritten. Does another node use the same store.node name?")

    def delete(self, keys: list[str]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for i in range(0, len(keys), 1000):
            batch = keys[i:i + 1000]
            try:
                r = self.client.delete_objects(Bucket=self.lake.bucket,
                                               Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            except (ClientError, BotoCoreError) as exc:
                raise LakeError(f"deleting {len(batch)} replaced object(s) from {self.lake.url} failed: {exc}") from None
            if r.get("Errors"):
                e = r["Errors"][0]
                raise LakeError(f"deleting {e.get('Key')} from {self.lake.url} failed: {e.get('Code')} {e.get('Message')}")


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()
