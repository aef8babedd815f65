-- counted_errors.sql
-- What it returns: every counted error up to $as_of, one row per event, with its local day and
-- whether it is the first attempt of its delivery: the first step of the suppression rule,
-- kept as table `counted_errors` (pipeline/suppression/rule.py), which
-- sql/suppression_candidates.sql and the guard (sql/guard_bursts.sql, sql/guard_replies.sql)
-- read, so the events are scanned for their counted errors once per run.
-- Reads:   events (view over the event store). Macros: counted_error, local_day (sql/macros.sql).
-- Params:  $tz              IANA zone whose calendar days count (e.g. 'Asia/Tokyo')
--          $as_of           TIMESTAMPTZ: only events up to this instant
--          $counted_reasons VARCHAR[]: reasons that count (scope must also be 'recipient')
-- Columns: address, ts, event_id, carrier, reason, dsn, reply_code, diagnostic, day (DATE:
--          the local day of ts in $tz), first_of_delivery (BOOLEAN: the first counted attempt
--          of its delivery, below; what the rule counts)
-- One delivery, one error: an MTA retries a deferred message for days (Postfix 5 days, qmail
-- 7), then logs its expiry; a content filter or an internal relay hands the same message on;
-- a bounce mail repeats what the log said. All of these are attempts of ONE message to the
-- address, which failed once. A delivery is the message (its Message-ID, with or without its
-- angle brackets: Postfix logs it without, a bounce mail and the sender with) to the address, else
-- (no Message-ID: qmail, some sendmail lines) the MTA host's queue id to the address, a
-- queue id whose earlier attempt to it ended (bounced or expired) being a new delivery (qmail
-- reuses a message's inode number), else the event itself. Its first counted attempt stands
-- for it (its time and local day); the later ones stay evidence.

WITH counted AS (
    SELECT recipient AS address, ts, event_id, carrier, reason, dsn, reply_code, diagnostic,
           local_day(ts, $tz) AS day, status,
           CASE WHEN trim(message_id, '<> ') <> '' THEN 'm ' || trim(message_id, '<> ')
                WHEN queue_id IS NOT NULL AND queue_id <> ''
                    THEN 'q ' || coalesce(mta, '') || ' ' || coalesce(host, '') || ' ' || queue_id
                ELSE 'e ' || event_id END AS delivery
    FROM events
    WHERE counted_error(status, scope, reason, $counted_reasons)
      AND ts <= $as_of
),

chained AS (
    -- attempts of a queue-id delivery after one that ended belong to a later delivery
    SELECT *,
           CASE WHEN substr(delivery, 1, 2) = 'q '
                THEN coalesce(sum(CASE WHEN status = 'deferred' THEN 0 ELSE 1 END)
                                  OVER (PARTITION BY address, delivery ORDER BY ts, event_id
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                ELSE 0 END AS ended_before
    FROM counted
),

final AS (
    SELECT address, ts, event_id, carrier, reason, dsn, reply_code, diagnostic, day,
           row_number() OVER (PARTITION BY address, delivery, ended_before ORDER BY ts, event_id) = 1
               AS first_of_delivery
    FROM chained
)

SELECT * FROM final
