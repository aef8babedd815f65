"""blake2b and sha1 for the ingest path, without importing hashlib.

`import hashlib` loads OpenSSL's libcrypto and sets it up: 2.5 ms of CPU on every `mailhygiene
ingest`, which hashes with blake2b (event ids) and sha1 (file fingerprints) only. hashlib's
blake2b is CPython's own (_blake2) in any case; CPython's own sha1 (_sha1) gives the digests of
OpenSSL's. An interpreter built without them falls back to hashlib.

Used by pipeline.store.records, pipeline.store.event_store and pipeline.ingest.source
(tests/test_startup.py: an ingest does not import hashlib).
"""

from __future__ import annotations

try:
    from _blake2 import blake2b  # the object hashlib.blake2b is
except ImportError:  # pragma: no cover - CPython always has it
    from hashlib import blake2b

try:
    from _sha1 import sha1
except ImportError:  # pragma: no cover - a CPython built --with-builtin-hashlib-hashes without sha1
    from hashlib import sha1

__all__ = ["blake2b", "sha1"]
