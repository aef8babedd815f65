-- address_history.sql
-- What it returns: every stored row of one address, oldest first: each witness of each delivery
-- attempt (the evidence behind a suppression entry, and `suppression show`).
-- Reads:   witnessed_events (sql/witnessed_events.sql: every stored row, marked when it is no
--          attempt of its own), counted_errors and bounce_mails (the rows of sql/counted_errors.sql
--          and sql/bounce_mails.sql, kept for this reader as the rule keeps them:
--          pipeline/suppression/rule.py keep_counted_errors).
-- Params:  $address         normalised address (lower-case, no quotes)
--          $tz              IANA zone for the local_time column
-- Columns: local_time, ts, mta, host, status, reason, scope, hard, carrier, smtp_phase, dsn,
--          reply_code, diagnostic, relay, queue_id, event_id, source_file, source_offset,
--          counted (whether the rule counts the row as an error: a row of sql/counted_errors.sql,
--          the one definition), bound (a bounce mail's row: whether it is bound to mail we sent
--          to the address, sql/bounce_mails.sql; NULL for every other row), hand_off (a `sent`
--          after which the same message to the address failed: a hop to a content filter, an
--          internal relay or a smarthost, which the rule does not take as a delivery: its
--          last_sent reads `attempts`, which leaves these out), restated (a bounce mail's row repeating a failure
--          another witness logged: the same attempt, counted once by the reports and the rule),
--          null_sender (a row of null-sender mail, `from=<>`: a DSN, no attempt of ours),
--          attempt (a row of the view `attempts`, sql/attempts.sql: none of the three, and no
--          bounce mail unbound to mail we sent; what `delivery attempts: N` counts)

WITH final AS (
    SELECT a.ts AT TIME ZONE $tz AS local_time, a.ts, a.mta, a.host, a.status, a.reason, a.scope, a.hard,
           a.carrier, a.smtp_phase, a.dsn, a.reply_code, a.diagnostic, a.relay, a.queue_id, a.event_id,
           a.source_file, a.source_offset,
           c.event_id IS NOT NULL AS counted,
           b.bound,
           coalesce(a.not_attempt = 'hand_off', FALSE) AS hand_off,
           coalesce(a.not_attempt = 'restated', FALSE) AS restated,
           coalesce(a.not_attempt = 'null_sender', FALSE) AS null_sender,
           a.not_attempt IS NULL AS attempt
    FROM witnessed_events a
    LEFT JOIN (SELECT event_id FROM counted_errors WHERE address = $address) c ON c.event_id = a.event_id
    LEFT JOIN (SELECT event_id, bound FROM bounce_mails WHERE address = $address) b ON b.event_id = a.event_id
    WHERE a.recipient = $address
)

SELECT * FROM final ORDER BY ts, event_id
