-- counted_errors.sql
-- What it returns: every counted error up to $as_of, one row per event, with its local day:
-- the first step of the suppression rule, kept as table `counted_errors` (pipeline/suppression/
-- rule.py), which sql/suppression_candidates.sql and the guard (sql/guard_bursts.sql,
-- sql/guard_replies.sql) read, so the events are scanned for their counted errors once per run.
-- Reads:   attempts (sql/attempts.sql: each delivery attempt once, so a bounce mail restating a
--          logged refusal is not a second error, its log row is the evidence; no null-sender row)
--          and events (the witnesses that bind a bounce mail). Macros: counted_error, local_day,
--          from_bounce_mail, binds_bounce, message_key (sql/macros.sql).
-- Params:  $tz              IANA zone whose calendar days count (e.g. 'Asia/Tokyo')
--          $as_of           TIMESTAMPTZ: only events up to this instant
--          $counted_reasons VARCHAR[]: reasons that count (scope must also be 'recipient')
--          $sender_mta      the `mta` of the send daemon's rows (pipeline.sender.events.MTA)
--          $window_days     the rule's look-back: how far before a bounce mail without a returned
--                           Message-ID an attempt to the address binds it (binds_bounce)
-- Columns: address, ts, event_id, carrier, reason, dsn, reply_code, diagnostic, day (DATE:
--          the local day of ts in $tz), status, message (the Message-ID without its angle
--          brackets: Postfix logs it without, a bounce mail and the sender with; NULL when
--          none; NULL for the send daemon's attempts, which it renders anew, with a new
--          Message-ID, at every retry: their queue id `job.row` names the delivery), host,
--          queue_id: what tells the attempts of one delivery apart (sql/suppression_candidates.sql)
-- Bounce mails: anyone can mail the bounce address. A bounce mail's row (from_bounce_mail) is a
-- counted error only when bound to mail we sent (binds_bounce): another witness (the daemon's
-- own attempt, an MTA log line) to the same address carries its returned Message-ID, or, when
-- it returns none, attempted the address in the look-back. Unbound rows stay in the store
-- (`suppression show` marks them) but are no counted errors.

WITH counted AS (
    SELECT recipient AS address, ts, event_id, carrier, reason, dsn, reply_code, diagnostic,
           local_day(ts, $tz) AS day, status,
           CASE WHEN mta = $sender_mta AND nullif(queue_id, '') IS NOT NULL THEN NULL
                ELSE message_key(message_id) END AS message,
           host, nullif(queue_id, '') AS queue_id,
           from_bounce_mail(source_file) AS bounce_mail
    FROM attempts
    WHERE counted_error(status, scope, reason, $counted_reasons)
      AND ts <= $as_of
),

bounce_mails AS (
    SELECT event_id, address, message, day FROM counted WHERE bounce_mail
),

witnesses AS (
    -- the other rows to the addresses bounce mails name (none read when there is no bounce mail)
    SELECT recipient AS address, message_key(message_id) AS message, local_day(ts, $tz) AS day
    FROM events
    WHERE recipient IN (SELECT address FROM bounce_mails)
      AND NOT from_bounce_mail(source_file)
      AND sender IS DISTINCT FROM ''  -- a DSN of ours to the address is no mail of ours to it
      AND ts <= $as_of
),

bound AS (
    SELECT DISTINCT b.event_id
    FROM bounce_mails b
    JOIN witnesses w
      ON w.address = b.address AND binds_bounce(b.message, b.day, w.message, w.day, $window_days)
)

SELECT address, ts, event_id, carrier, reason, dsn, reply_code, diagnostic, day, status, message, host, queue_id
FROM counted
WHERE NOT bounce_mail OR event_id IN (SELECT event_id FROM bound)
