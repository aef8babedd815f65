-- bounce_mails.sql
-- What it returns: every bounce mail's row (from_bounce_mail: `mailhygiene bounces`) up to $as_of,
-- with whether it is bound to mail we sent to its address: THE binding (sql/macros.sql
-- binds_bounce), kept as table `bounce_mails` by every reader that counts errors
-- (pipeline/suppression/rule.py keep_counted_errors: the rule, the guard, the report, `suppression
-- show`, `bounces`) or filtered refusals (`export --filtered`). Anyone can mail the bounce address:
-- an unbound row stays in the store and counts for nothing (sql/bound_marks.sql marks it, so the
-- view `attempts` and every figure leave it out; sql/counted_errors.sql,
-- sql/filtered_addresses.sql, sql/address_history.sql read `bound` from here too).
-- Reads:   witnessed_events (sql/witnessed_events.sql: the bounce mails' rows, restated ones too,
--          which `suppression show` marks) and events (the witnesses; see `witnesses` below).
--          Macros: from_bounce_mail, binds_bounce, local_day, message_key (sql/macros.sql).
-- Params:  $tz              IANA zone whose calendar days the look-back counts
--          $as_of           TIMESTAMPTZ: only rows (and witnesses) up to this instant
--          $window_days     the rule's look-back: how far before a bounce mail without a returned
--                           Message-ID an attempt to the address binds it (binds_bounce)
-- Columns: event_id, address, bound (BOOLEAN)
-- Shape: the bounce mails' rows are few (about one per bounce); the witnesses are read only for
-- the addresses that those not restating a logged failure name (none read when there is none).

WITH bounce_rows AS (
    SELECT event_id, recipient AS address, ts, message_id, not_attempt
    FROM witnessed_events
    WHERE from_bounce_mail(source_file) AND ts <= $as_of
),

to_bind AS (
    -- a restated row is bound already: the logged failure it repeats (sql/not_attempts.sql) is a
    -- witness of the same message to the same address. In relay mode that is nearly every row:
    -- the witnesses below are read for the few others only
    SELECT event_id, address, message_key(message_id) AS message, local_day(ts, $tz) AS day
    FROM bounce_rows
    WHERE not_attempt IS DISTINCT FROM 'restated'
),

witnesses AS (
    -- Every other row of mail we sent to the address: read from `events`, not `attempts`, on
    -- purpose: a `sent` that only handed the message on (not_attempt 'hand_off') is no delivery
    -- but still proves we sent that message to the address. Left out: other bounce mails, and
    -- null-sender rows (sender '': not_attempt 'null_sender'; a DSN of ours to the address is no
    -- mail of ours to it).
    SELECT recipient AS address, message_key(message_id) AS message, local_day(ts, $tz) AS day
    FROM events
    WHERE recipient IN (SELECT address FROM to_bind)
      AND NOT from_bounce_mail(source_file)
      AND sender IS DISTINCT FROM ''
      AND ts <= $as_of
),

bound AS (
    SELECT DISTINCT b.event_id
    FROM to_bind b
    JOIN witnesses w
      ON w.address = b.address AND binds_bounce(b.message, b.day, w.message, w.day, $window_days)
)

SELECT b.event_id, b.address, coalesce(b.not_attempt = 'restated', FALSE) OR k.event_id IS NOT NULL AS bound
FROM bounce_rows b
LEFT JOIN bound k ON k.event_id = b.event_id
