"""Ingest: MTA log lines -> classified event rows in the event store.

  engine     batch ingest of files (plain or .gz): detect the format, feed the parsers, classify,
             hand Arrow batches to the store; positions saved after the events they cover
  follow     the live follower of `watch` (rotation, copytruncate, multilog)
  tail       log file identity (first-line fingerprint), positions, opening .gz
  parsers/   one parser per MTA (postfix, sendmail, qmail) + the Postfix block reader
  native/    the compiled Postfix block scanner (ctypes), with a numpy fallback
"""
