/* witnessed_events.sql */
/* What it returns: every event row (each witness of each attempt), with not_attempt: NULL for a */
/* delivery attempt, else why the row is none of its own ('restated' | 'hand_off' | 'null_sender': */
/* sql/not_attempts.sql, the definition; 'unbound': sql/bound_marks.sql, once the binding is kept). The view `witnessed_events` (pipeline/store/warehouse.py */
/* attach_views; lake.spark registers its port): what sql/attempts.sql reads and `suppression */
/* show` (sql/address_history.sql) marks its rows by. */
/* Reads:   events, not_attempts (the rows of sql/not_attempts.sql: a view, or the rows kept once) */
/* Params:  none */
/* Columns: those of events, and not_attempt */
SELECT
  e.*,
  n.not_attempt
FROM events AS e
LEFT JOIN not_attempts AS n
  ON n.event_id = e.event_id
