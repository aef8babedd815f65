"""A real S3-compatible server on loopback for tests and rehearsals: moto in server mode.

Starts `python -m moto.server -H 127.0.0.1 -p PORT` as a child process (the `.[spark]` extra
installs moto[server]), waits until it answers (bounded), creates buckets, and stops the process
when done. Reads and writes nothing on disk. Used by tests/test_lake*.py and bench/bench_engines.py.

    with MotoS3Server(port) as s3:        # port from pipeline.sender.testing.free_port()
        s3.create_bucket("lake")
        os.environ.update(s3.credentials)  # AWS_ACCESS_KEY_ID ... (moto accepts any)
        ... store.url = "s3://lake/prefix", store.endpoint_url = s3.endpoint_url
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import sys
import time
import urllib.error
import urllib.request

START_TIMEOUT_S = 30.0


class MotoS3Server:
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_REGION": "us-east-1"}

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self.endpoint_url = f"http://{host}:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "MotoS3Server":
        env = {**os.environ, **self.credentials}
        # its request log goes to a file: a pipe nobody reads would fill and stall the server
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=self._log, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                self._log.seek(0)
                err = self._log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"moto server exited at start (code {self.proc.returncode}): {err}")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server on {self.endpoint_url} did not answer in {START_TIMEOUT_S:.0f} s")
                time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        self.proc = None

    def client(self):
        import boto3

        return boto3.session.Session(**{k: v for k, v in (("aws_access_key_id", "testing"),
                                                          ("aws_secret_access_key", "testing"),
                                                          ("region_name", "us-east-1"))}
                                     ).client("s3", endpoint_url=self.endpoint_url)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def __enter__(self) -> "MotoS3Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
