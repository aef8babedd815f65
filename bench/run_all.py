"""Run every benchmark in bench/ one after another (`make bench`). Each prints its own figures."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for script in ("bench_ingest.py", "bench_rule.py", "bench_watch.py", "bench_sender.py", "bench_startup.py",
               "bench_large_inputs.py"):
    path = HERE / script
    if path.exists():
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, str(path)], check=False)
