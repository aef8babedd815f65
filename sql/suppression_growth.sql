-- suppression_growth.sql
-- What it returns: how the suppression list grew: entries added and released per local day
-- (the day the rule or an operator acted, not the day of the errors) and the list's size at
-- the end of that day. Only days with an action have a row.
-- Reads:   suppression_history (view over suppression/history.parquet; pipeline/report/reports.py
--          registers an empty one when no list exists yet). Macros: local_day, day_in_period
--          (sql/macros.sql)
-- Params:  $tz             IANA zone whose calendar days count
--          $since, $until  DATE or NULL: first and last local day shown (inclusive); list_size
--                          always counts the whole history
-- Columns: day, added, added_by_rule, released, net_change, list_size

WITH actions AS (
    SELECT local_day("at", $tz) AS day, action, source
    FROM suppression_history
    WHERE action IN ('added', 'released')
),

per_day AS (
    SELECT day,
           CAST(count(*) FILTER (WHERE action = 'added') AS BIGINT) AS added,
           CAST(count(*) FILTER (WHERE action = 'added' AND source = 'rule') AS BIGINT) AS added_by_rule,
           CAST(count(*) FILTER (WHERE action = 'released') AS BIGINT) AS released
    FROM actions
    GROUP BY day
),

running AS (
    SELECT day, added, added_by_rule, released, added - released AS net_change,
           CAST(sum(added - released) OVER (ORDER BY day ROWS UNBOUNDED PRECEDING) AS BIGINT) AS list_size
    FROM per_day
),

final AS (
    SELECT * FROM running
    WHERE day_in_period(day, $since, $until)
)

SELECT * FROM final ORDER BY day
