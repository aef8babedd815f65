-- address_history.sql
-- What it returns: every stored row of one address, oldest first: each witness of each delivery
-- attempt (the evidence behind a suppression entry, and `suppression show`).
-- Reads:   witnessed_events (sql/witnessed_events.sql: every stored row, marked when it is no
--          attempt of its own). Macros: counted_error (sql/macros.sql).
-- Params:  $address         normalised address (lower-case, no quotes)
--          $tz              IANA zone for the local_time column
--          $counted_reasons VARCHAR[]: reasons the suppression rule counts (rule.counted_reasons)
-- Columns: local_time, ts, mta, host, status, reason, scope, hard, carrier, smtp_phase, dsn,
--          reply_code, diagnostic, relay, queue_id, event_id, source_file, source_offset,
--          counted (whether the rule counts the row as an error: a counted error that is an
--          attempt, as sql/counted_errors.sql reads them), hand_off (a `sent`
--          after which the same message to the address failed: a hop to a content filter, an
--          internal relay or a smarthost, which the rule does not take as a delivery; the same
--          test as sql/suppression_candidates.sql's last_sent, held to it by
--          tests/test_suppression_rule.py), restated (a bounce mail's row repeating a failure
--          another witness logged: the same attempt, counted once by the reports and the rule),
--          null_sender (a row of null-sender mail, `from=<>`: a DSN, no attempt of ours)

WITH final AS (
    SELECT ts AT TIME ZONE $tz AS local_time, ts, mta, host, status, reason, scope, hard,
           carrier, smtp_phase, dsn, reply_code, diagnostic, relay, queue_id, event_id,
           source_file, source_offset,
           counted_error(status, scope, reason, $counted_reasons) AND not_attempt IS NULL AS counted,
           coalesce(not_attempt = 'hand_off', FALSE) AS hand_off,
           coalesce(not_attempt = 'restated', FALSE) AS restated,
           coalesce(not_attempt = 'null_sender', FALSE) AS null_sender
    FROM witnessed_events
    WHERE recipient = $address
)

SELECT * FROM final ORDER BY ts, event_id
