"""Inclusive thread CPU of named functions during one `mailhygiene ingest` (the stage profile).

    .venv/bin/python bench/stage_profile.py --data-dir $(mktemp -d) --timezone Asia/Tokyo ingest --year 2026 --no-progress LOG

Wraps the functions listed below (and the compiled scanner's calls) with time.thread_time(), runs
the command in this process and prints, on stderr, each one's total CPU and call count: inclusive
(a caller's figure holds its callees'), per thread (reader threads' and the writer's work shows
under their functions), and each thread's own CPU (`thread:NAME`, summed over the threads of that
name). The command runs through pipeline.cli.main(), as the `mailhygiene` console script does:
with its start-up set-up (gc.freeze, the batch allocator tuning of pipeline/core/allocator.py),
which cli() alone leaves out (a profile without them has more page faults and collector work
than the program); the report is printed at exit. A figure here is for finding where the time
goes; speed claims are whole-process A/B pairs (bench/ingest_once.sh with bench/ab_pairs.py, or
bench/bench_ingest.py). The main thread's block work alone, without the other threads, is
measured more exactly by bench/bench_read_block.py.
"""
import atexit, gc, sys, time, threading, collections, functools, importlib, os
T = collections.Counter(); N = collections.Counter()
def wrap(modname, attr):
    mod = importlib.import_module(modname)
    obj = mod
    parts = attr.split(".")
    for p in parts[:-1]:
        obj = getattr(obj, p)
    f = getattr(obj, parts[-1])
    key = f"{modname.split('.')[-1]}.{attr}"
    @functools.wraps(f)
    def w(*a, **k):
        t = time.thread_time_ns()
        try:
            return f(*a, **k)
        finally:
            T[key] += time.thread_time_ns() - t; N[key] += 1
    setattr(obj, parts[-1], w)
t0 = time.process_time()
import pipeline.ingest.engine
targets = [l.split() for l in """
pipeline.ingest.parsers.postfix_block extract
pipeline.ingest.parsers.postfix_block _row_columns
pipeline.ingest.parsers.postfix_block _text_facts_native
pipeline.ingest.parsers.postfix_block _python_lower
pipeline.ingest.parsers.postfix_block read_block
pipeline.ingest.parsers.postfix_block _carried_entries
pipeline.ingest.parsers.postfix_join join
pipeline.ingest.parsers.postfix_block _exact_loop
pipeline.ingest.parsers.postfix_block _apply_rest
pipeline.ingest.parsers.blocks block_minutes
pipeline.ingest.sink EventBuffer.annotate
pipeline.ingest.sink EventBuffer.take
pipeline.ingest.sink classify_many
pipeline.ingest.sink mask_addresses
pipeline.ingest.sink EventBuffer._carriers
pipeline.store.event_store EventStore.write
pipeline.store.event_store EventStore._write_file
pipeline.ingest.engine _has_rfc5424
pipeline.ingest.engine _has_foreign
pipeline.ingest.engine _has_markers
pipeline.ingest.engine _extract
pipeline.ingest.engine Engine._apply
pipeline.ingest.engine Engine.ingest
pipeline.ingest.session Session.commit
""".strip().splitlines()]
for m, a in targets:
    wrap(m, a)
import pipeline.ingest.native as nat
sc = nat.SCANNER
for name in ("scan", "gather", "event_ids", "text_facts"):
    f = getattr(sc, name)
    def mk(f, name):
        def w(*a, **k):
            t = time.thread_time_ns()
            try: return f(*a, **k)
            finally: T["C." + name] += time.thread_time_ns() - t; N["C." + name] += 1
        return w
    setattr(sc, name, mk(f, name))
_run = threading.Thread.run
def run(self):  # each thread's own CPU, by its name less the number (block-reader_0 -> block-reader)
    t = time.thread_time_ns()
    try:
        return _run(self)
    finally:
        key = "thread:" + self.name.rsplit("_", 1)[0]
        T[key] += time.thread_time_ns() - t; N[key] += 1
threading.Thread.run = run
def report():
    tot = time.process_time()
    print(f"process CPU {tot:.3f} s (startup-to-imports {t0:.3f}); objects frozen at start-up: {gc.get_freeze_count()}",
          file=sys.stderr)
    for k, v in sorted(T.items(), key=lambda kv: -kv[1]):
        print(f"{v/1e9:8.3f} s {N[k]:6d}  {k}", file=sys.stderr)
atexit.register(report)  # (main() exits through the atexit handlers, without the interpreter's teardown)
from pipeline.cli import main
main()
