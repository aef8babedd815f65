"""Large and hostile inputs cost time in proportion to their size, never its square.

Each test feeds one command's code an input shaped like the one that once made it superlinear
(a send backlog of many rows, a bounce naming thousands of recipients, HTML that never closes
its tags, ...) at a size where the old cost was seconds to hours and the linear cost is
milliseconds. No timed assertions: alarm() only stops a hang, with a wide margin, and the queue's
questions are measured in SQLite VM instructions (work, not time). The figures before and after
each fix are in BENCHMARKS.md ("Large inputs").
"""

from __future__ import annotations

import random
import sqlite3

from pipeline.sender.queue import Queue

from fixtures import alarm


# ----------------------------------------------------------------------------- send daemon's queue
CARRIERS = ("au", "docomo", "other", "softbank")
# The definition the daemon's carrier question keeps (one statement, all rows read): carriers
# with a queued row, or a deferred one due by ?, of a job not on hold.
DUE_CARRIERS = """
SELECT DISTINCT carrier FROM recipients
WHERE (state = 'queued' OR (state = 'deferred' AND next_attempt_at <= ?))
  AND job_id NOT IN (SELECT job_id FROM jobs WHERE held = 1)
"""


def vm_instructions(con: sqlite3.Connection, call) -> int:
    """SQLite VM instructions `call` runs on `con`, counted in steps of 100."""
    steps = 0

    def tick():
        nonlocal steps
        steps += 1
        return 0

    con.set_progress_handler(tick, 100)
    try:
        call()
    finally:
        con.set_progress_handler(None, 100)
    return steps * 100


def _add(q: Queue, n: int, start: int = 0) -> int:
    rows = [(f"u{i}@d{i % 4}.example.jp", f"d{i % 4}.example.jp", CARRIERS[i % 4]) for i in range(start, start + n)]
    return q.add_job(subject="s", body="b", from_address="news@mail.example.jp", recipients=rows)[0]


def test_the_daemons_questions_to_a_large_backlog_read_a_few_rows_not_all(tmp_path):
    # Every 0.25 s the daemon asks which carriers have work, and every 200 messages it fetches a
    # carrier's next queued rows. Both once read every waiting row (a DISTINCT over them, a sort
    # of them): with 1M queued, 0.4 s a refresh and 50 ms a fetch, so the daemon sent 2 messages
    # a second instead of 1,600. Now a few index searches each.
    q = Queue(tmp_path / "queue.sqlite3")
    n = 40_000
    _add(q, n)
    con = q._con()
    found = []
    carriers_work = vm_instructions(con, lambda: found.extend(q.due_carriers(0.0)))
    assert found == list(CARRIERS)
    fetched = []
    fetch_work = vm_instructions(con, lambda: fetched.extend(q.due_queued("docomo", n // 2, 200)))
    assert [r.id for r in fetched] == list(range(n // 2 + 2, n // 2 + 2 + 4 * 200, 4))  # docomo: every 4th id
    # less than one VM instruction per waiting row (the old statements ran dozens per row)
    assert carriers_work < n // 4, carriers_work
    assert fetch_work < n // 4, fetch_work


def test_due_carriers_is_the_distinct_query(tmp_path):
    # the hop through the index finds the carriers the one DISTINCT statement finds (whose order
    # depended on SQLite's plan), in a fixed order: those with queued rows, then the others, by name
    rng = random.Random(7)
    q = Queue(tmp_path / "queue.sqlite3")
    con = q._con()
    names = ("au", "docomo", "other", "rakuten", "softbank", "ymobile")
    for trial in range(30):
        con.execute("DELETE FROM recipients")
        con.execute("DELETE FROM jobs")
        jobs = [_add(q, 0) for _ in range(3)]
        rows = []
        for i in range(rng.randrange(0, 60)):
            state = rng.choice(("queued", "deferred", "sent", "failed", "skipped"))
            rows.append((rng.choice(jobs), f"a{i}@x.jp", "x.jp", rng.choice(names[:rng.randrange(1, 7)]), state,
                         rng.uniform(0, 10) if state == "deferred" else 0.0))
        con.executemany("INSERT INTO recipients (job_id, address, domain, carrier, state, next_attempt_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, 0)", rows)
        held = {job for job in jobs if rng.random() < 0.3}
        for job in held:
            q.set_held(job, True)
        for now in (0.0, 2.5, 5.0, 11.0):
            expected = {r[0] for r in con.execute(DUE_CARRIERS, (now,))}
            queued = sorted({c for job, _, _, c, s, _ in rows if s == "queued" and job not in held})
            assert q.due_carriers(now) == queued + sorted(expected - set(queued)), (trial, now)
