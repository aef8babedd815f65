-- bound_marks.sql
-- What it returns: the marks of sql/not_attempts.sql, plus one mark 'unbound' for each bounce
-- mail's row that sql/bounce_mails.sql (THE binding) does not bind to mail we sent and that is
-- not marked already: the marks the view `not_attempts` reads once a reader has kept the binding
-- (pipeline/suppression/counted.py keep_bound_attempts: the rule, the guard, the report,
-- `suppression show`, `bounces`, `export --filtered`; lake.spark the same). Anyone can mail the
-- bounce address: an unbound row stays in the store (`suppression show` lists it, bound false)
-- but is no delivery attempt, so no figure counts it: not the rule's counted errors, not the
-- report's attempts, bounced, filtered or rates, not the guard's attempts.
-- Reads:   not_attempts (the marks so far: sql/not_attempts.sql, kept), bounce_mails (the rows of
--          sql/bounce_mails.sql, kept with the reader's $tz, $as_of and $window_days)
-- Params:  none
-- Columns: event_id, not_attempt ('restated' | 'hand_off' | 'null_sender' | 'unbound')
-- An unbound row is never 'restated' (a restated row is bound) and can be no other mark's
-- witness: a `sent` of the same message to the same address would bind it.

SELECT event_id, not_attempt FROM not_attempts
UNION ALL
SELECT event_id, 'unbound' AS not_attempt
FROM bounce_mails
WHERE NOT bound
  AND event_id NOT IN (SELECT event_id FROM not_attempts)
