/* suppression_growth.sql */
/* What it returns: how the suppression list grew: entries added and released per local day */
/* (the day the rule or an operator acted, not the day of the errors) and the list's size at */
/* the end of that day. Only days with an action have a row. */
/* Reads:   suppression_history (view over suppression/history.parquet; pipeline/report/reports.py */
/*          registers an empty one when no list exists yet). Macros: local_day, day_in_period */
/*          (sql/macros.sql) */
/* Params:  $tz             IANA zone whose calendar days count */
/*          $since, $until  DATE or NULL: first and last local day shown (inclusive); list_size */
/*                          always counts the whole history */
/* Columns: day, added, added_by_rule, released, net_change, list_size */
WITH actions AS (
  SELECT
    (
      CAST(FROM_UTC_TIMESTAMP(`at`, 'Asia/Tokyo') AS DATE)
    ) AS day,
    action,
    source
  FROM suppression_history
  WHERE
    action IN ('added', 'released')
), per_day AS (
  SELECT
    day,
    CAST(COUNT(*) FILTER(WHERE
      action = 'added') AS BIGINT) AS added,
    CAST(COUNT(*) FILTER(WHERE
      action = 'added' AND source = 'rule') AS BIGINT) AS added_by_rule,
    CAST(COUNT(*) FILTER(WHERE
      action = 'released') AS BIGINT) AS released
  FROM actions
  GROUP BY
    day
), running AS (
  SELECT
    day,
    added,
    added_by_rule,
    released,
    added - released AS net_change,
    CAST(SUM(added - released) OVER (ORDER BY day NULLS LAST ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS list_size
  FROM per_day
), final AS (
  SELECT
    *
  FROM running
  WHERE
    (
      (
        CAST('2026-11-01' AS DATE) IS NULL
        OR day >= CAST(CAST('2026-11-01' AS DATE) AS DATE)
      )
      AND (
        CAST('2026-11-30' AS DATE) IS NULL
        OR day <= CAST(CAST('2026-11-30' AS DATE) AS DATE)
      )
    )
)
SELECT
  *
FROM final
ORDER BY
  day NULLS LAST
