-- postfix_block_state.sql — Postfix block reader, step 4: the parser state after the block.
-- What it returns: the queue ids still open after the block (no `removed` yet, a line within
--   $ttl_us of the block's last line), in QueueParser's terms: one kind 'S' row per queue id
--   (sender, message_id, seen) and one kind 'D' row per recipient still deferred (its last
--   deferral, the row an expiry would copy).
-- Reads:   pf_seq (postfix_block_sequence.sql).
-- Params:  $ttl_us, $source_file (for deferrals read in this block)
-- Columns: kind, qid, seen, sender, message_id, and for 'D': ts, host, recipient, relay, dsn,
--   status, text, source_file, source_offset, line.

WITH open_ids AS (
    -- queue ids whose last line is not `removed`, in their latest lifetime
    SELECT qid, arg_max(seg, n) AS seg, arg_max_null(cur_sender, n) AS sender, arg_max_null(cur_mid, n) AS message_id,
        max(epoch + CASE WHEN expired THEN 1 ELSE 0 END) AS last_epoch
    FROM pf_seq WHERE NOT malformed
    GROUP BY qid
    HAVING arg_max(kind, n) <> 'R'
),
seen AS (
    SELECT o.*, max(t.touch_ts) AS seen
    FROM open_ids o JOIN pf_seq t ON t.qid = o.qid AND t.seg = o.seg AND NOT t.malformed AND t.kind <> 'R'
    GROUP BY ALL
),
kept AS (
    SELECT * FROM seen
    WHERE seen >= (SELECT max(touch_ts) FROM pf_seq WHERE NOT malformed) - $ttl_us
),
deferred AS (
    SELECT t.* FROM pf_seq t JOIN kept k ON k.qid = t.qid AND k.seg = t.seg AND t.epoch = k.last_epoch
    WHERE t.kind = 'D' AND NOT t.malformed
    QUALIFY row_number() OVER (PARTITION BY t.qid, t.recipient ORDER BY t.n DESC) = 1
        AND t.status = 'deferred'
)
SELECT 'S' AS kind, qid, seen, sender, message_id, NULL::BIGINT AS ts, NULL AS host,
    NULL AS recipient, NULL AS relay, NULL AS dsn, NULL AS status, NULL AS text,
    NULL AS source_file, NULL::BIGINT AS source_offset, NULL AS line, NULL::BIGINT AS n
FROM kept
UNION ALL
SELECT 'D', qid, NULL, CASE WHEN synthetic THEN own_sender ELSE cur_sender END,
    CASE WHEN synthetic THEN carried_mid ELSE cur_mid END, ts, host,
    recipient, relay, dsn, status, text,
    CASE WHEN synthetic THEN carried_source ELSE $source_file END, off, line, n
FROM deferred
ORDER BY qid, kind DESC, n
