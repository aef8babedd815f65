-- postfix_block_sequence.sql — Postfix block reader, step 2: the queue-id joins, in windows.
-- What it builds: TEMP TABLE pf_seq: every valid touch of a queue id in line order, with the
--   sender and message-id known at that line (cur_sender, cur_mid), the queue id's lifetime
--   (seg = the line number where it began) and its expiry epoch (epoch = expiry lines of the
--   queue id before this line; within one lifetime that separates the expiries).
--   Malformed delivery lines stay in the table with malformed = true and no seg.
-- Reads:   pf_parsed (postfix_block_parse.sql); pf_fix (n, recipient, relay, dsn, status, text,
--          sender, message_id, malformed: the rows pf_parsed left to Python); pf_stamps (key,
--          base_us: microseconds of the stamp's minute, from ParseContext, NULL when invalid);
--          pf_carry (the parser state carried in: kind 'S' rows with sender/message_id/seen, and
--          kind 'D' rows for recipients still deferred, all with n < 0).
-- Params:  $ttl_us   a queue id is forgotten this long after its last line (QueueParser.STATE_TTL_US)
-- Semantics of QueueParser: a lifetime ends at qmgr `removed` or when a line comes more than
-- $ttl_us after the lifetime's latest line; `from=` sets the sender, `message-id=` the
-- message-id (an empty one clears it); an expiry line ends an epoch.

CREATE OR REPLACE TEMP TABLE pf_judged AS
WITH parsed AS (
    SELECT p.n, p.off, p.line, p.kind, p.expired, p.host, p.qid, s.base_us + p.sec_us AS ts,
        CASE WHEN p.simple THEN p.recipient ELSE f.recipient END AS recipient,
        CASE WHEN p.simple THEN p.relay ELSE f.relay END AS relay,
        CASE WHEN p.simple THEN p.dsn ELSE f.dsn END AS dsn,
        CASE WHEN p.simple THEN p.status ELSE f.status END AS status,
        CASE WHEN p.simple THEN p.text ELSE f.text END AS text,
        CASE WHEN p.simple THEN p.sender ELSE f.sender END AS sender,
        CASE WHEN p.simple THEN p.message_id ELSE f.message_id END AS message_id,
        coalesce(f.malformed, false) AS py_malformed
    -- a line whose stamp makes no time is skipped, as split_syslog() does
    FROM pf_parsed p JOIN pf_stamps s ON s.key = p.stamp_key AND s.base_us IS NOT NULL AND p.sec_us IS NOT NULL
    LEFT JOIN pf_fix f ON f.n = p.n
),
judged AS (
    SELECT *,
        kind = 'D' AND (py_malformed OR status IS NULL
            OR (status NOT IN ('sent', 'deferred', 'bounced', 'undeliverable', 'expired')
                AND status NOT IN ('deliverable', 'undeliverable-but-not-cached'))
            OR (status IN ('sent', 'deferred', 'bounced', 'undeliverable', 'expired') AND coalesce(recipient, '') = '')) AS malformed
    FROM parsed
)
SELECT * FROM judged;

CREATE OR REPLACE TEMP TABLE pf_seq AS
-- the windows sort narrow rows (ids, kinds, values); the wide columns of delivery and expiry
-- lines are joined back after
WITH touches AS (
    SELECT n, kind, expired, qid, ts AS touch_ts, false AS synthetic, sender, message_id
    FROM pf_judged
    WHERE NOT malformed AND (kind <> 'D' OR status IN ('sent', 'deferred', 'bounced', 'undeliverable', 'expired'))
    UNION ALL
    SELECT n, kind, false, qid, seen, true, sender, message_id
    FROM pf_carry
),
breaks AS (
    -- a lifetime begins at a queue id's first line, after `removed`, or after a silence > TTL
    SELECT *,
        lag(kind) OVER w IS NULL OR lag(kind) OVER w = 'R'
            OR coalesce(touch_ts - max(CASE WHEN kind <> 'R' THEN touch_ts END)
                        OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) > $ttl_us, false) AS new_seg
    FROM touches
    WINDOW w AS (PARTITION BY qid ORDER BY n)
),
running AS (
    -- one window pass: the lifetime's start, and the latest sender / message-id line with its
    -- value (chr(1) stands for "not known" so that a carried unknown still hides older values)
    SELECT n, kind, expired, qid, touch_ts, synthetic,
        max(CASE WHEN new_seg THEN n END) OVER w AS seg,
        max(CASE WHEN kind IN ('F', 'S') THEN n END) OVER w AS sender_n,
        last_value(CASE WHEN kind IN ('F', 'S') THEN coalesce(sender, chr(1)) END IGNORE NULLS) OVER w AS sender_v,
        max(CASE WHEN kind IN ('M', 'S') THEN n END) OVER w AS mid_n,
        last_value(CASE WHEN kind IN ('M', 'S') THEN coalesce(message_id, chr(1)) END IGNORE NULLS) OVER w AS mid_v,
        count(CASE WHEN expired THEN 1 END) OVER w - CASE WHEN expired THEN 1 ELSE 0 END AS epoch
    FROM breaks
    WINDOW w AS (PARTITION BY qid ORDER BY n ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
wide AS (
    SELECT n, off, line, host, ts, recipient, relay, dsn, status, text, sender AS own_sender,
        NULL::VARCHAR AS carried_mid, NULL::VARCHAR AS carried_source
    FROM pf_judged WHERE NOT malformed AND (kind = 'D' OR expired)
    UNION ALL
    SELECT n, off, line, host, ts, recipient, relay, dsn, status, text, sender, message_id, source_file
    FROM pf_carry WHERE kind = 'D'
)
SELECT r.n, r.kind, r.expired, r.qid, r.touch_ts, r.synthetic, r.seg, r.epoch,
    CASE WHEN r.sender_n >= r.seg THEN nullif(r.sender_v, chr(1)) END AS cur_sender,
    CASE WHEN r.mid_n >= r.seg THEN nullif(r.mid_v, chr(1)) END AS cur_mid,
    w.* EXCLUDE (n), false AS malformed
FROM running r LEFT JOIN wide w ON w.n = r.n
UNION ALL BY NAME
SELECT n, off, line, kind, qid, true AS malformed FROM pf_judged WHERE malformed
