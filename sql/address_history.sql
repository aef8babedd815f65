-- address_history.sql
-- What it returns: every delivery attempt to one address, oldest first (the evidence behind a
-- suppression entry, and `suppression show`).
-- Reads:   events. Macros: counted_error, failed_after, from_bounce_mail, binds_bounce,
--          local_day (sql/macros.sql).
-- Params:  $address         normalised address (lower-case, no quotes)
--          $tz              IANA zone for the local_time column
--          $counted_reasons VARCHAR[]: reasons the suppression rule counts (rule.counted_reasons)
--          $window_days     the rule's look-back (rule.window_days), $sender_mta: as in
--                           sql/counted_errors.sql, whose test of a bounce mail's binding this repeats
-- Columns: local_time, ts, mta, host, status, reason, scope, hard, carrier, smtp_phase, dsn,
--          reply_code, diagnostic, relay, queue_id, event_id, source_file, source_offset,
--          counted (whether the rule counts the attempt as an error: a bounce mail's row only
--          when bound), bound (a bounce mail's row: whether it is bound to mail we sent to the
--          address, binds_bounce; NULL for every other row), hand_off (a `sent`
--          after which the same message to the address failed: a hop to a content filter, an
--          internal relay or a smarthost, which the rule does not take as a delivery; the same
--          test as sql/suppression_candidates.sql's last_sent, held to it by
--          tests/test_suppression_rule.py)

WITH attempts AS (
    SELECT *, nullif(trim(message_id, '<> '), '') AS message, local_day(ts, $tz) AS day,
           from_bounce_mail(mta, queue_id, $sender_mta) AS bounce_mail
    FROM events WHERE recipient = $address
),

bound AS (
    SELECT DISTINCT b.event_id
    FROM attempts b
    JOIN attempts w
      ON b.bounce_mail AND NOT w.bounce_mail
         AND binds_bounce(b.message, b.day, w.message, w.day, $window_days)
),

failed_later AS (
    SELECT message, max(ts) AS failed_at,
           arg_max(source_file, ts) AS failed_file, arg_max(source_offset, ts) AS failed_offset
    FROM attempts
    WHERE status <> 'sent' AND message IS NOT NULL
    GROUP BY message
),

final AS (
    SELECT a.ts AT TIME ZONE $tz AS local_time, a.ts, a.mta, a.host, a.status, a.reason, a.scope, a.hard,
           a.carrier, a.smtp_phase, a.dsn, a.reply_code, a.diagnostic, a.relay, a.queue_id, a.event_id,
           a.source_file, a.source_offset,
           counted_error(a.status, a.scope, a.reason, $counted_reasons)
               AND (NOT a.bounce_mail OR b.event_id IS NOT NULL) AS counted,
           CASE WHEN a.bounce_mail THEN b.event_id IS NOT NULL END AS bound,
           a.status = 'sent'
               AND failed_after(f.failed_at, f.failed_file, f.failed_offset,
                                a.ts, a.source_file, a.source_offset) AS hand_off
    FROM attempts a
    LEFT JOIN failed_later f USING (message)
    LEFT JOIN bound b ON b.event_id = a.event_id
)

SELECT * FROM final ORDER BY ts, event_id
