-- counted_errors.sql
-- What it returns: every counted error up to $as_of, one row per event, with its local day: THE
-- definition of "a counted error", kept as table `counted_errors` (pipeline/suppression/rule.py
-- keep_counted_errors) by every reader that counts them: the rule (sql/suppression_candidates.sql),
-- the guard (sql/guard_bursts.sql, sql/guard_replies.sql, sql/error_addresses.sql,
-- sql/carrier_error_addresses.sql), the report's counted_errors (sql/carrier_figures.sql),
-- `suppression show`'s `counted` (sql/address_history.sql) and so the notebook; on Spark the
-- engine keeps the port. The events are scanned for their counted errors once per run.
-- Reads:   attempts (sql/attempts.sql: each delivery attempt once, so a bounce mail restating a
--          logged refusal is not a second error, its log row is the evidence; no null-sender row;
--          the rule's run narrows `events` to $as_of before anything is read, so no mark comes
--          from a later event: pipeline/suppression/counted.py keep_bound_attempts)
--          and bounce_mails (the rows of sql/bounce_mails.sql with the same $tz, $as_of and
--          $window_days: which bounce mails' rows are bound). Macros: counted_error, local_day,
--          message_key (sql/macros.sql).
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
-- Bounce mails: anyone can mail the bounce address. A bounce mail's row (from_bounce_mail) is a
-- counted error only when bound to mail we sent (sql/bounce_mails.sql, binds_bounce): another
-- witness (the daemon's own attempt, an MTA log line) to the same address carries its returned
-- Message-ID, or attempted the address in the look-back. Unbound rows stay in the store
-- (`suppression show` marks them) but are no counted errors.

SELECT recipient AS address, ts, event_id, carrier, reason, dsn, reply_code, diagnostic,
       local_day(ts, $tz) AS day, status,
       CASE WHEN mta = $sender_mta AND nullif(queue_id, '') IS NOT NULL THEN NULL
            ELSE message_key(message_id) END AS message,
       host, nullif(queue_id, '') AS queue_id
FROM attempts
WHERE counted_error(status, scope, reason, $counted_reasons)
  AND ts <= $as_of
  AND event_id NOT IN (SELECT event_id FROM bounce_mails WHERE NOT bound)
