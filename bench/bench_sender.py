"""Sender benchmark: how fast the daemon sends to a loopback SMTP server, unthrottled and throttled.

The SMTP server (aiosmtpd) runs in its own process so it does not share our GIL; it records the
time each message arrived. The daemon runs in this process via run_daemon().

  unthrottled: N messages, rate limit far above what can be reached -> messages/s (target >= 200)
  throttled:   a carrier limited to COUNT per INTERVAL with a backlog larger than DURATION can drain
               -> achieved rate / configured rate over the run (target >= 95 %), and the largest
               number of messages the server saw in any INTERVAL window (must be <= COUNT)

    .venv/bin/python bench/bench_sender.py               # full run (~75 s)
    .venv/bin/python bench/bench_sender.py --quick       # 10 s throttled run
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.core.config import load_config  # noqa: E402
from pipeline.sender.daemon import run_daemon  # noqa: E402
from pipeline.sender.enqueue import enqueue  # noqa: E402
from pipeline.sender.testing import free_port, max_in_window  # noqa: E402

SERVER = """
import json, signal, sys, time, threading
from pipeline.sender.testing import RecordingServer
srv = RecordingServer(int(sys.argv[1])).start()
print("ready", flush=True)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
done.wait()
srv.stop()
json.dump([r.at for r in srv.received], open(sys.argv[2], "w"))
"""


class Server:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.out = tmp / f"times-{self.port}.json"
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(self.port), str(self.out)],
                                     cwd=REPO, stdout=subprocess.PIPE)
        assert self.proc.stdout.readline().strip() == b"ready"

    def times(self) -> list[float]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return sorted(json.loads(self.out.read_text()))


def config(tmp: Path, relay: str, toml: str):
    p = tmp / "mailhygiene.toml"
    p.write_text(f'[sender]\nfrom_address = "news@mail.example.jp"\nfrom_name = "配信センター"\n'
                 f'default_relay = "{relay}"\n{toml}\n', encoding="utf-8")
    return load_config(p, data_dir=tmp / "data", timezone="Asia/Tokyo")


def unthrottled(n: int, concurrency: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        srv = Server(tmp)
        cfg = config(tmp, f"127.0.0.1:{srv.port}",
                     f"default_rate = {{count = 1000000, interval = 1.0}}\nconcurrency = {concurrency}\n"
                     "messages_per_connection = 100")
        enqueue(cfg, subject="【ベンチ】送信速度", body="本文です。\n" * 20,
                addresses=[f"u{i}@docomo.ne.jp" for i in range(n)])
        t0 = time.time()
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=300)
        wall = time.time() - t0
        times = srv.times()
    span = times[-1] - times[0]
    return {"messages": len(times), "sent": stats.sent, "concurrency": concurrency,
            "wall_s": round(wall, 2), "rate_per_s": round(len(times) / wall, 1),
            "server_span_rate_per_s": round((len(times) - 1) / span, 1)}


def throttled(count: int, interval: float, duration: float) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        srv = Server(tmp)
        cfg = config(tmp, f"127.0.0.1:{srv.port}",
                     f"rates = {{au = {{count = {count}, interval = {interval}}}}}\nconcurrency = 4")
        backlog = int(count / interval * duration * 1.3) + count
        enqueue(cfg, subject="【ベンチ】送信速度", body="本文です。",
                addresses=[f"u{i}@au.com" for i in range(backlog)])
        stats = run_daemon(cfg, max_seconds=duration)
        times = srv.times()
    configured = count / interval
    span = times[-1] - times[0]
    # rate over whole windows: messages after the first one, over the time they took
    achieved = (len(times) - count) / span if span else 0.0
    return {"configured_per_s": configured, "duration_s": duration, "messages": len(times),
            "sent": stats.sent, "achieved_per_s": round(achieved, 2),
            "achieved_fraction": round(achieved / configured, 4),
            "max_in_any_window": max_in_window(times, interval), "count": count, "interval_s": interval}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=5000)
    args = ap.parse_args()
    results = {"unthrottled": [unthrottled(args.n, c) for c in (1, 4)]}
    if args.quick:
        results["throttled"] = [throttled(20, 1.0, 10.0)]
    else:
        results["throttled"] = [throttled(100, 1.0, 60.0), throttled(100, 60.0, 60.0 * 3)] if os.environ.get(
            "BENCH_LONG") else [throttled(100, 1.0, 60.0)]
    print(json.dumps(results, indent=2, ensure_ascii=False))
    ok = all(u["rate_per_s"] >= 200 for u in results["unthrottled"] if u["concurrency"] > 1) and all(
        t["achieved_fraction"] >= 0.95 and t["max_in_any_window"] <= t["count"] for t in results["throttled"])
    print("PASS" if ok else "FAIL: below target")


if __name__ == "__main__":
    main()
