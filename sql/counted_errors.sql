-- counted_errors.sql
-- What it returns: every counted error up to $as_of, one row per event, with its local day:
-- the first step of the suppression rule, kept as table `counted_errors` (pipeline/suppression/
-- rule.py), which sql/suppression_candidates.sql and the guard (sql/guard_bursts.sql,
-- sql/guard_replies.sql) read, so the events are scanned for their counted errors once per run.
-- Reads:   attempts (sql/attempts.sql: each delivery attempt once, so a bounce mail restating a
--          logged refusal is not a second error, its log row is the evidence; no null-sender row).
--          Macros: counted_error, local_day (sql/macros.sql).
-- Params:  $tz              IANA zone whose calendar days count (e.g. 'Asia/Tokyo')
--          $as_of           TIMESTAMPTZ: only events up to this instant
--          $counted_reasons VARCHAR[]: reasons that count (scope must also be 'recipient')
--          $sender_mta      the `mta` of the send daemon's rows (pipeline.sender.events.MTA)
-- Columns: address, ts, event_id, carrier, reason, dsn, reply_code, diagnostic, day (DATE:
--          the local day of ts in $tz), status, message (the Message-ID without its angle
--          brackets: Postfix logs it without, a bounce mail and the sender with; NULL when
--          none; NULL for the send daemon's attempts, which it renders anew, with a new
--          Message-ID, at every retry: their queue id `job.row` names the delivery), host,
--          queue_id: what tells the attempts of one delivery apart (sql/suppression_candidates.sql)

WITH counted AS (
    SELECT recipient AS address, ts, event_id, carrier, reason, dsn, reply_code, diagnostic,
           local_day(ts, $tz) AS day, status,
           CASE WHEN mta = $sender_mta AND nullif(queue_id, '') IS NOT NULL THEN NULL
                ELSE nullif(trim(message_id, '<> '), '') END AS message,
           host, nullif(queue_id, '') AS queue_id
    FROM attempts
    WHERE counted_error(status, scope, reason, $counted_reasons)
      AND ts <= $as_of
)

SELECT * FROM counted
