-- address_history.sql
-- What it returns: every stored row of one address, oldest first: each witness of each delivery
-- attempt (the evidence behind a suppression entry, and `suppression show`).
-- Reads:   witnessed_events (sql/witnessed_events.sql: every stored row, marked when it is no
--          attempt of its own). Macros: counted_error, local_day, from_bounce_mail, binds_bounce,
--          message_key (sql/macros.sql).
-- Params:  $address         normalised address (lower-case, no quotes)
--          $tz              IANA zone for the local_time column
--          $counted_reasons VARCHAR[]: reasons the suppression rule counts (rule.counted_reasons)
--          $window_days     the rule's look-back (rule.window_days): the binding of a bounce mail's
--                           row, as sql/counted_errors.sql tests it
-- Columns: local_time, ts, mta, host, status, reason, scope, hard, carrier, smtp_phase, dsn,
--          reply_code, diagnostic, relay, queue_id, event_id, source_file, source_offset,
--          counted (whether the rule counts the row as an error: a counted error that is an
--          attempt, as sql/counted_errors.sql reads them, and for a bounce mail's row only when
--          bound), bound (a bounce mail's row: whether it is bound to mail we sent to the
--          address, binds_bounce; NULL for every other row), hand_off (a `sent`
--          after which the same message to the address failed: a hop to a content filter, an
--          internal relay or a smarthost, which the rule does not take as a delivery; the same
--          test as sql/suppression_candidates.sql's last_sent, held to it by
--          tests/test_suppression_rule.py), restated (a bounce mail's row repeating a failure
--          another witness logged: the same attempt, counted once by the reports and the rule),
--          null_sender (a row of null-sender mail, `from=<>`: a DSN, no attempt of ours)

WITH addressed AS (
    SELECT *, message_key(message_id) AS message, local_day(ts, $tz) AS day,
           from_bounce_mail(source_file) AS bounce_mail
    FROM witnessed_events WHERE recipient = $address
),

bound AS (
    SELECT DISTINCT b.event_id
    FROM addressed b
    JOIN addressed w
      ON b.bounce_mail AND NOT w.bounce_mail AND w.sender IS DISTINCT FROM ''
         AND binds_bounce(b.message, b.day, w.message, w.day, $window_days)
),

final AS (
    SELECT a.ts AT TIME ZONE $tz AS local_time, a.ts, a.mta, a.host, a.status, a.reason, a.scope, a.hard,
           a.carrier, a.smtp_phase, a.dsn, a.reply_code, a.diagnostic, a.relay, a.queue_id, a.event_id,
           a.source_file, a.source_offset,
           counted_error(a.status, a.scope, a.reason, $counted_reasons) AND a.not_attempt IS NULL
               AND (NOT a.bounce_mail OR b.event_id IS NOT NULL) AS counted,
           CASE WHEN a.bounce_mail THEN b.event_id IS NOT NULL END AS bound,
           coalesce(a.not_attempt = 'hand_off', FALSE) AS hand_off,
           coalesce(a.not_attempt = 'restated', FALSE) AS restated,
           coalesce(a.not_attempt = 'null_sender', FALSE) AS null_sender
    FROM addressed a
    LEFT JOIN bound b ON b.event_id = a.event_id
)

SELECT * FROM final ORDER BY ts, event_id
