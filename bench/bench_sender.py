"""Sender benchmark: how fast the daemon sends to a loopback SMTP server, unthrottled and throttled,
against plain smtplib to the same kind of sink in the same run.

The SMTP server (aiosmtpd) runs in its own process so it does not share our GIL; it records the
time each message arrived. The daemon runs in this process via run_daemon() (queue, throttle,
events and all); the baseline is a plain smtplib loop (one connection per 100 messages, the same
rendered message bytes), each with a fresh sink. Ours and the baseline alternate, --repeat pairs.

  unthrottled: N messages, rate limit far above what can be reached -> messages/s
               (targets: >= 1,000/s, and >= 0.7 x smtplib, pair by pair)
  throttled:   a carrier limited to COUNT per INTERVAL with a backlog larger than DURATION can drain
               -> achieved rate / configured rate over the run (target >= 95 %), and the largest
               number of messages the server saw in any INTERVAL window (must be <= COUNT)

    .venv/bin/python bench/bench_sender.py               # 3 pairs of 5,000 + a 60 s throttled run
    .venv/bin/python bench/bench_sender.py --quick       # 1 pair + a 10 s throttled run
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import smtplib
import statistics
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
        _SERVERS.append(self)
        assert self.proc.stdout.readline().strip() == b"ready"

    def times(self) -> list[float]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return sorted(json.loads(self.out.read_text()))

    def kill(self) -> None:
        """After a failed run: the sink must not outlive the benchmark."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


_SERVERS: list[Server] = []


def _kill_servers() -> None:
    for srv in _SERVERS:
        srv.kill()


import atexit  # noqa: E402

atexit.register(_kill_servers)


def config(tmp: Path, relay: str, toml: str):
    p = tmp / "mailhygiene.toml"
    # direct routes (not default_relay, a hand-off): every attempt is also written as an event row
    p.write_text(f'[sender]\nfrom_address = "news@mail.example.jp"\nfrom_name = "配信センター"\n'
                 f'default_relay = "{relay}"\nroutes = {{docomo = "{relay}", au = "{relay}"}}\n{toml}\n',
                 encoding="utf-8")
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
        cpu0 = time.process_time()
        stats = run_daemon(cfg, exit_when_done=True, max_seconds=300)
        wall, cpu = time.time() - t0, time.process_time() - cpu0
        times = srv.times()
    span = times[-1] - times[0]
    return {"messages": len(times), "sent": stats.sent, "events": stats.events, "concurrency": concurrency,
            "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "rate_per_s": round(len(times) / wall, 1),
            "server_span_rate_per_s": round((len(times) - 1) / span, 1)}


def baseline_smtplib(n: int) -> dict:
    """Plain smtplib: the same rendered messages, one connection per 100, no queue, no throttle."""
    from pipeline.sender.compose import MessageTemplate

    with tempfile.TemporaryDirectory() as d:
        srv = Server(Path(d))
        tpl = MessageTemplate(subject="【ベンチ】送信速度", body="本文です。\n" * 20, from_address="news@mail.example.jp",
                              from_name="配信センター")
        t0 = time.time()
        cpu0 = time.process_time()
        smtp = None
        for i in range(n):
            if i % 100 == 0:
                if smtp is not None:
                    smtp.quit()
                smtp = smtplib.SMTP("127.0.0.1", srv.port)
                smtp.ehlo()
            to = f"u{i}@docomo.ne.jp"
            smtp.sendmail("news@mail.example.jp", [to], tpl.render(to).data)
        smtp.quit()
        wall, cpu = time.time() - t0, time.process_time() - cpu0
        times = srv.times()
    return {"messages": len(times), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "rate_per_s": round(len(times) / wall, 1)}


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
    ap.add_argument("--repeat", type=int, default=3, help="pairs of (ours, smtplib), alternating")
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    repeat = 1 if args.quick else args.repeat
    pairs = []
    for _ in range(repeat):
        ours = unthrottled(args.n, args.concurrency)
        base = baseline_smtplib(args.n)
        pairs.append({"ours": ours, "smtplib": base, "ratio": round(ours["rate_per_s"] / base["rate_per_s"], 3)})
    summary = {"ours_median_per_s": statistics.median(p["ours"]["rate_per_s"] for p in pairs),
               "smtplib_median_per_s": statistics.median(p["smtplib"]["rate_per_s"] for p in pairs),
               "ratio_median": statistics.median(p["ratio"] for p in pairs),
               "load_before": os.getloadavg()}
    results = {"unthrottled_pairs": pairs, "unthrottled": summary}
    if args.quick:
        results["throttled"] = [throttled(20, 1.0, 10.0)]
    else:
        results["throttled"] = [throttled(100, 1.0, 60.0)] + (
            [throttled(100, 60.0, 60.0 * 3)] if os.environ.get("BENCH_LONG") else [])
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=2, ensure_ascii=False))
    ok = (summary["ours_median_per_s"] >= 1000 and summary["ratio_median"] >= 0.7
          and all(t["achieved_fraction"] >= 0.95 and t["max_in_any_window"] <= t["count"]
                  for t in results["throttled"]))
    print("PASS" if ok else "FAIL: below target")


if __name__ == "__main__":
    main()
