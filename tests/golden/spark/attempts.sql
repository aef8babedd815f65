/* attempts.sql */
/* What it returns: the delivery attempts, each once: the event rows that sql/not_attempts.sql */
/* does not mark (no bounce mail restating a logged failure, no `sent` that only handed the */
/* message on), nor, once a reader kept the binding (pipeline/suppression/counted.py */
/* keep_bound_attempts: the rule, the guard, the report, `show`, the notebook), sql/bound_marks.sql */
/* (no bounce mail's row unbound to mail we sent: a forged DSN counts in no figure). The view `attempts` (pipeline/store/warehouse.py attach_views; lake.spark */
/* registers its port): what every report figure, the notebook and the exports count */
/* (docs/reports.md "Definitions"). */
/* Reads:   witnessed_events. */
/* Params:  none */
/* Columns: those of events, and not_attempt (always NULL here). */
SELECT
  *
FROM witnessed_events
WHERE
  not_attempt IS NULL
