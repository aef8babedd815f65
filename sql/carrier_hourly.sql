-- carrier_hourly.sql
-- What it returns: delivery attempts and refusals per carrier and local hour of the day (0-23)
-- over the report period, with the part sent in the first minutes of each hour: docomo and au
-- see the most load on the hour (毎正時) and ask senders to avoid it.
-- Reads:   attempts (sql/attempts.sql: the event store's rows, each delivery attempt once, a
--          bounce mail's row only when bound to mail we sent (sql/bound_marks.sql); `date` =
--          UTC day of the partition, `ts` TIMESTAMPTZ)
-- Params:  $tz            IANA zone whose clock and calendar days count (e.g. 'Asia/Tokyo')
--          $since, $until DATE or NULL: first and last local day of the report (inclusive)
--          $edge_minutes  INTEGER: "on the hour" = minutes 0 .. $edge_minutes - 1 of each hour
-- Columns: carrier, hour, attempts, delivered, deferred, refused, rate_limited,
--          on_the_hour_attempts, on_the_hour_refused, refusal_rate
-- Definitions (docs/reports.md):
--   hour                  the local clock hour of the attempt, 0 .. 23 (BIGINT); only hours
--                         with attempts have a row
--   refused               attempts that did not deliver because the receiver refused us:
--                         status <> 'sent' AND scope = 'sender' (rate limits, blocks, reception
--                         filters, authentication, policy, spam verdicts)
--   rate_limited          of those, reason 'rate_limited' (too many connections / too fast)
--   on_the_hour_attempts  attempts whose local minute is < $edge_minutes
--   on_the_hour_refused   refused attempts whose local minute is < $edge_minutes
--   refusal_rate          refused / attempts (DOUBLE)

WITH stored AS (
    -- partitions are UTC days: a day either side of the local bounds only prunes files
    SELECT coalesce(carrier, 'unknown') AS carrier, status, scope, reason,
           ts AT TIME ZONE $tz AS local_ts
    FROM attempts
    WHERE ($since IS NULL OR date >= CAST(CAST(CAST($since AS DATE) - INTERVAL 1 DAY AS DATE) AS VARCHAR))
      AND ($until IS NULL OR date <= CAST(CAST(CAST($until AS DATE) + INTERVAL 1 DAY AS DATE) AS VARCHAR))
),

in_period AS (
    SELECT carrier, status, scope, reason,
           CAST(EXTRACT(HOUR FROM local_ts) AS BIGINT) AS hour,
           CAST(EXTRACT(MINUTE FROM local_ts) AS BIGINT) AS minute,
           (status <> 'sent' AND scope = 'sender') AS is_refused
    FROM stored
    WHERE ($since IS NULL OR CAST(local_ts AS DATE) >= CAST($since AS DATE))
      AND ($until IS NULL OR CAST(local_ts AS DATE) <= CAST($until AS DATE))
),

per_hour AS (
    SELECT carrier, hour,
           CAST(count(*) AS BIGINT) AS attempts,
           CAST(count(*) FILTER (WHERE status = 'sent') AS BIGINT) AS delivered,
           CAST(count(*) FILTER (WHERE status = 'deferred') AS BIGINT) AS deferred,
           CAST(count(*) FILTER (WHERE is_refused) AS BIGINT) AS refused,
           CAST(count(*) FILTER (WHERE is_refused AND reason = 'rate_limited') AS BIGINT) AS rate_limited,
           CAST(count(*) FILTER (WHERE minute < $edge_minutes) AS BIGINT) AS on_the_hour_attempts,
           CAST(count(*) FILTER (WHERE minute < $edge_minutes AND is_refused) AS BIGINT) AS on_the_hour_refused
    FROM in_period
    GROUP BY carrier, hour
),

final AS (
    SELECT carrier, hour, attempts, delivered, deferred, refused, rate_limited,
           on_the_hour_attempts, on_the_hour_refused,
           CAST(refused AS DOUBLE) / attempts AS refusal_rate
    FROM per_hour
)

SELECT * FROM final ORDER BY carrier, hour
