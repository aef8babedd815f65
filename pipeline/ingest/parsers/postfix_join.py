"""The queue-id join of a Postfix block, computed without touching the parser state.

postfix_block.read_block applies a block's interesting lines to PostfixParser's state. Before it
changes anything it asks join() for a plan (JoinInput in, a dict of arrays out):

- the time of every line and the log's clock at it (`ts`, `clock_run`), and which lines go
  through the exact loop (`in_loop`: those of queue ids with a fed line, a message-id after a
  delivery, an entry from before that is stale or counts recipients; all of them when the block
  spans more than the join window or could fill the table: see read_block);
- for the other queue ids (`rest`, the bulk of a log: received, delivered, removed), what their
  lines join: per delivery row its sender and message-id (an index into the block's from= /
  message-id= values, or the entry's from before, or none), and per queue id the entry it is
  left with (`t_*`: removed, or reused after a `removed`, its time, the rank of its last from= /
  message-id= line) with each recipient's last delivery of its last epoch (`e_*`).

read_block then makes every state change through PostfixParser.change(), in the same order as
before: this module only computes. join_numpy() defines the plan; the compiled join_block() of
pipeline/ingest/native/postfix_scan.c computes the same in one pass (tests/test_postfix_join.py
holds the two equal on random and real blocks) and is used when it was built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from ...store import arrow_build as ab
from ...store import arrow_compute as pc
from .. import native

K_FEED, K_DELIVERY, K_FROM, K_REMOVED, K_MSGID = 0, 1, 2, 3, 4  # (postfix_block's)
NO_TIME = np.iinfo(np.int64).min
T_REMOVED, T_REUSED = 1, 2  # t_flags bits


@dataclass
class JoinInput:
    """A block's interesting lines and what the parser state says of its queue ids.

    Per interesting line: kinds (K_*, K_FEED for a line fed to the parser), fkinds (the kinds as
    extract() found them: a from= / message-id= line's rank is its number among those), codes
    (queue-id code, read where kinds is not K_FEED), minutes / us (the stamp, read likewise:
    minute_us[minutes] + us). fed_ts: the time of each K_FEED line as feed() reads it (NO_TIME:
    none). clock: the parser's clock before the block.
    Per queue-id code: special (must go through the exact loop: a fed line's queue id),
    has_carried (an entry from before the block), and of that entry: seen, left (it counts
    recipients), sender / mid (their index in the joined columns, -1 none), deferred (it keeps
    deferred recipients). ttl: the join window; crowded: the table could fill in the block.
    Per delivery row: status_codes (deferred_code: a deferral), recipients (no nulls)."""

    kinds: np.ndarray
    fkinds: np.ndarray
    codes: np.ndarray
    minutes: np.ndarray
    us: np.ndarray
    minute_us: np.ndarray
    fed_ts: np.ndarray
    clock: int
    special: np.ndarray
    has_carried: np.ndarray
    carried_seen: np.ndarray
    carried_left: np.ndarray
    carried_sender: np.ndarray
    carried_mid: np.ndarray
    carried_deferred: np.ndarray
    ttl: int
    crowded: bool
    status_codes: np.ndarray
    deferred_code: int
    recipients: pa.Array


def join(j: JoinInput) -> dict:
    """The plan (see the module's docstring): compiled when the scanner was built."""
    scanner = native.SCANNER
    if scanner is not None and not j.recipients.null_count:
        return scanner.join_block(j)
    return join_numpy(j)


def join_numpy(j: JoinInput) -> dict:
    """The plan, by numpy: what join_block in the C must return.

    Per line: ts (0 for fed lines), clock_run, in_loop (bool), aux (a delivery's row; a from= or
    message-id= line's rank; -1). Per delivery row: d_ts, d_code, sender / mid (joined index, -1
    none; rows of the exact loop -1: the loop joins them). Per queue id of the rest whose entry
    changes, by code: t_code, t_flags (T_REMOVED, T_REUSED), t_top (its time), t_sender / t_mid
    (rank of its last epoch's last from= / message-id= line, -1 none). Per recipient of a
    queue id left with an entry that has or had deferrals (by code, then first delivery): e_code,
    e_first (a row with that recipient), e_value (its last delivery's row if a deferral, else -1)."""
    kinds, n_codes = j.kinds, len(j.special)
    n = len(kinds)
    fast = kinds != K_FEED
    ts = np.where(fast, j.minute_us[j.minutes] + j.us, 0) if len(j.minute_us) else np.zeros(n, np.int64)
    codes = np.where(fast, j.codes, -1)
    line_ts = np.where(fast, ts, NO_TIME)
    line_ts[~fast] = j.fed_ts
    clock_run = running_max(np.maximum(line_ts, j.clock))
    is_delivery = kinds == K_DELIVERY
    delivery_j = np.cumsum(is_delivery) - 1
    n_deliv = int(delivery_j[-1]) + 1 if n else 0
    aux = np.full(n, -1, np.int64)
    aux[is_delivery] = delivery_j[is_delivery]
    for kind_ in (K_FROM, K_MSGID):
        at = kinds == kind_
        aux[at] = (np.cumsum(j.fkinds == kind_) - 1)[at]

    # --- which lines go through the exact loop
    special = np.zeros(n_codes + 1, bool)              # by code; the last one is "fed" (-1)
    special[:-1] = j.special
    first_delivery = np.full(n_codes + 1, np.iinfo(np.int64).max)
    d_at = np.flatnonzero(is_delivery)
    np.minimum.at(first_delivery, codes[d_at], d_at)
    last_msgid = np.full(n_codes + 1, -1, np.int64)
    m_at = np.flatnonzero(kinds == K_MSGID)
    np.maximum.at(last_msgid, codes[m_at], m_at)
    special[last_msgid > first_delivery] = True        # a deferral keeps the message-id of its moment
    valid = line_ts > NO_TIME
    block_max = int(clock_run[-1]) if n else j.clock
    block_min = int(line_ts[valid].min()) if valid.any() else block_max
    special[:-1] |= j.has_carried & (j.carried_left | (block_max - j.carried_seen > j.ttl))
    special[-1] = True
    if block_max - block_min > j.ttl or j.crowded:
        special[:] = True                               # a week inside, or the cap: all exact
    in_loop = special[codes]

    plan = {"ts": ts, "clock_run": clock_run, "in_loop": in_loop, "aux": aux, "d_ts": ts[is_delivery],
            "d_code": codes[is_delivery], "sender": np.full(n_deliv, -1, np.int64), "mid": np.full(n_deliv, -1, np.int64)}
    plan.update(_join_rest(j, np.flatnonzero(~in_loop), codes, ts, aux, plan["sender"], plan["mid"], n_codes))
    return plan


def _join_rest(j: JoinInput, rest: np.ndarray, codes, ts, aux, sender_out, mid_out, n_codes) -> dict:
    """The rest's queue ids: per queue id, the latest from= / message-id= since its last
    `removed` (or the entry from before the block) joined to each delivery row; the entry each
    is left with."""
    empty = np.zeros(0, np.int64)
    out = {"t_code": empty, "t_flags": np.zeros(0, np.uint8), "t_top": empty, "t_sender": empty, "t_mid": empty,
           "e_code": empty, "e_first": empty, "e_value": empty}
    if not len(rest):
        return out
    by_qid = rest[_stable_order(codes[rest], n_codes)]  # each queue id's lines in order
    k, c, t = j.kinds[by_qid], codes[by_qid], ts[by_qid]
    group_start = np.ones(len(by_qid), bool)
    group_start[1:] = c[1:] != c[:-1]
    epoch_start = group_start.copy()
    epoch_start[1:] |= k[:-1] == K_REMOVED              # `removed` forgets the queue id
    # runs: a queue id's lines (group), its lines since a `removed` (epoch); a line is still of
    # the entry from before the block where its epoch begins where its group does
    group_at, epoch_at = np.flatnonzero(group_start), np.flatnonzero(epoch_start)
    group_of, epoch_id = np.cumsum(group_start) - 1, np.cumsum(epoch_start) - 1
    has_carried = j.has_carried
    carried_sender = np.where(has_carried, j.carried_sender, -1)
    carried_mid = np.where(has_carried, j.carried_mid, -1)
    # the latest from= / message-id= line of each line's queue id so far (-1: none); its value
    # where that line is of the current epoch, else the entry's from before (carried) or none
    dpos = np.flatnonzero(k == K_DELIVERY)
    d_first = epoch_at[epoch_id[dpos]]
    d_carried, d_code = d_first == group_at[group_of[dpos]], c[dpos]
    d_rows = aux[by_qid[dpos]]
    latest = []
    for kind_, carried_index, joined in ((K_FROM, carried_sender, sender_out), (K_MSGID, carried_mid, mid_out)):
        last = _Latest(k == kind_)
        d_last = last.at(dpos)
        joined[d_rows] = np.where(d_last >= d_first, aux[by_qid[np.maximum(d_last, 0)]],
                                  np.where(d_carried, carried_index[d_code], -1))
        latest.append(last)
    # the entry each queue id is left with: none after `removed`, else its last epoch's values
    group_end = np.append(group_at[1:], len(k)) - 1
    seen_max = np.where(k == K_REMOVED, np.iinfo(np.int64).min, t)
    epoch_max = np.maximum.reduceat(seen_max, epoch_at)  # (epochs are runs)
    in_carried_end = epoch_at[epoch_id[group_end]] == group_at
    # (a queue id removed at the end that had no entry before leaves nothing to do)
    e = group_end[(k[group_end] != K_REMOVED) | has_carried[c[group_end]]]
    removed_e = k[e] == K_REMOVED
    e_first = epoch_at[epoch_id[e]]                     # where the last epoch begins
    reused_e = (e_first != group_at[group_of[e]]) & has_carried[c[e]] & ~removed_e
    ranks = []
    for last in latest:
        at = last.at(e)
        ranks.append(np.where((at >= e_first) & ~removed_e, aux[by_qid[np.maximum(at, 0)]], -1))
    out.update(t_code=c[e], t_flags=(removed_e * T_REMOVED | reused_e * T_REUSED).astype(np.uint8),
               t_top=np.where(removed_e, t[e], epoch_max[epoch_id[e]]), t_sender=ranks[0], t_mid=ranks[1])
    out.update(_last_epoch_deliveries(j, k, c, epoch_id, group_of, group_end, in_carried_end, dpos, d_rows))
    return out


def _last_epoch_deliveries(j: JoinInput, k, c, epoch_id, group_of, group_end, in_carried_end, dpos, d_rows) -> dict:
    """Per queue id left with an entry that has deferrals to keep or forget: (code, a row of the
    recipient, its last delivery's row if a deferral, else -1) for each recipient's last delivery
    of the last epoch, by code, then in the order the recipients first came. (`dpos`: the
    delivery lines among the lines in queue-id order, `d_rows` their rows.)"""
    empty = np.zeros(0, np.int64)
    none = {"e_code": empty, "e_first": empty, "e_value": empty}
    ends = group_end
    live = k[ends] != K_REMOVED                          # (a removed entry keeps no deferral)
    last = (epoch_id[dpos] == epoch_id[ends][group_of[dpos]]) & live[group_of[dpos]]
    dl, rows = dpos[last], d_rows[last]                  # deliveries of each queue id's last epoch
    deferred = j.status_codes[rows] == j.deferred_code
    # queue ids with a deferral in their last epoch, or carrying deferred recipients into it
    want = np.zeros(len(ends), bool)
    want[group_of[dl[deferred]]] = True
    code_end = c[ends]
    carrying = in_carried_end & live & j.has_carried[code_end] & j.carried_deferred[code_end]
    want |= carrying
    pick = np.flatnonzero(want[group_of[dl]])
    if not len(pick):
        return none
    # per (queue id, recipient): where it first comes (the order of the list) and its last
    # delivery (what is kept); the picks are grouped by queue id, each group in line order
    pj, pg = rows[pick], group_of[dl[pick]]
    value = np.where(deferred[pick], pj, -1)
    rcode = _codes_within_groups(pc.take(j.recipients, ab.indices(pj)), pg)
    if rcode.any():
        key = pg.astype(np.int64) * (int(rcode.max()) + 1) + rcode
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        last = np.full(len(first), -1, np.int64)
        np.maximum.at(last, inverse.ravel(), np.arange(len(key)))
    else:                                                # one recipient a queue id: its picks are a run
        first = np.flatnonzero(np.append(True, pg[1:] != pg[:-1]))
        last = np.append(first[1:], len(pg)) - 1
    # a final status can only forget a deferral the entry holds: one from before the block (an
    # entry made in the block holds only the deferrals set here, a recipient's last one); the
    # others would change nothing and are left out
    kept = (value[last] >= 0) | carrying[pg[first]]
    first, last = first[kept], last[kept]
    if len(first) > 1 and not (first[1:] > first[:-1]).all():
        order = np.argsort(first, kind="stable")
        first, last = first[order], last[order]
    return {"e_code": code_end[pg[first]], "e_first": pj[first], "e_value": value[last]}


def running_max(x: np.ndarray) -> np.ndarray:
    """np.maximum.accumulate(x), which is a slow scalar loop over int64: a log's times mostly
    never go back, and then it is x itself (one vectorised comparison tells)."""
    if len(x) < 2 or (x[1:] >= x[:-1]).all():
        return x
    return np.maximum.accumulate(x)


class _Latest:
    """The last position at or before a position where `flags` is True (-1: none), asked at
    sorted positions: np.maximum.accumulate(np.where(flags, i, -1))[at], by a binary search
    among the True positions (not an array of every position)."""

    def __init__(self, flags: np.ndarray):
        self.where = np.flatnonzero(flags)
        self.value = np.concatenate(([-1], self.where))

    def at(self, positions: np.ndarray) -> np.ndarray:
        return self.value[np.searchsorted(self.where, positions, side="right")]


def _stable_order(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """np.argsort(codes, kind="stable") of codes in [0, n_codes): as 16-bit numbers where they fit
    (numpy sorts those by radix, in one pass: several times faster than the merge sort of wider ones)."""
    return np.argsort(codes.astype(np.uint16) if n_codes <= 1 << 16 else codes, kind="stable")


def _codes_within_groups(values: pa.Array, groups: np.ndarray) -> np.ndarray:
    """A code per value that is equal for equal values of the same group (`groups`: runs of
    equal numbers): 0 throughout a group whose values are all one (a message to one recipient,
    the common case, found by comparing neighbours), else by dictionary_encode of the values of
    the groups with more than one."""
    codes = np.zeros(len(values), np.int64)
    if len(values) < 2:
        return codes
    same_group = groups[1:] == groups[:-1]
    equal = pc.equal(values[1:], values[:-1])           # null where either is null: told apart below
    differ = ~(ab.to_bools(equal) & ab.to_bools(pc.is_valid(equal)))
    mixed_pair = np.flatnonzero(same_group & differ)
    if not len(mixed_pair):
        return codes
    mixed = np.isin(groups, np.unique(groups[mixed_pair]))
    at = np.flatnonzero(mixed)
    codes[at] = ab.to_ints(pc.dictionary_encode(pc.take(values, ab.indices(at)), null_encoding="encode").indices)
    return codes
