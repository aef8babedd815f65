-- address_history.sql
-- What it returns: every delivery attempt to one address, oldest first (the evidence behind a
-- suppression entry, and `suppression show`).
-- Reads:   events. Macros: counted_error (sql/macros.sql).
-- Params:  $address         normalised address (lower-case, no quotes)
--          $tz              IANA zone for the local_time column
--          $counted_reasons VARCHAR[]: reasons the suppression rule counts (rule.counted_reasons)
-- Columns: local_time, ts, mta, host, status, reason, scope, hard, carrier, smtp_phase, dsn,
--          reply_code, diagnostic, relay, queue_id, event_id, source_file, source_offset,
--          counted (whether the rule counts the attempt as an error)

WITH attempts AS (
    SELECT * FROM events WHERE recipient = $address
),

final AS (
    SELECT ts AT TIME ZONE $tz AS local_time, ts, mta, host, status, reason, scope, hard, carrier,
           smtp_phase, dsn, reply_code, diagnostic, relay, queue_id, event_id, source_file,
           source_offset, counted_error(status, scope, reason, $counted_reasons) AS counted
    FROM attempts
)

SELECT * FROM final ORDER BY ts, event_id
