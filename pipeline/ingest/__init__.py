"""Ingest: MTA log lines -> classified event rows in the event store. One engine for batch and live.

  engine     the engine: a source read to its end (`ingest`, `clean`) or followed (`watch`);
             per chunk: the MTA's parser (Postfix: the block reader), the sink, commits
  source     line sources: files, globs, gzip/bzip2/xz (told by their first bytes; a damaged one
             read up to its damage, which is reported), standard input (`-`) and named pipes;
             file identity by the fingerprint of the first line and a check of the first bytes
             (logs that start alike each their own); rotation (rename+create, copytruncate,
             .1 -> .1.gz, multilog), a file renamed away found among its siblings; long lines
             and holes (NUL runs a crash leaves) looked through in bounded memory
  session    one parser per MTA (state changed only through the parser's own interface), the
             front door for raw lines (rejects, their samples and the pruning of them), and the
             state file: positions + parser state in one atomic, fsync'd file written after the
             events it covers are durable
  sink       classification (carrier, reason, scope, hard) and event ids, then the event store
             (pipeline.store.event_store) on a writer thread
  parsers/   one parser per MTA (postfix, sendmail, qmail): the definition of each format; a
             block reader per MTA (postfix_block, sendmail_block, qmail_block) held to its parser
             by a differential test; blocks: what they share (line kinds, stamps into times);
             postfix_join: the Postfix block's queue-id join, computed before read_block
             applies it through the parser's change()
  native/    the compiled block scanners (ctypes; C99 built at install): Postfix, sendmail, qmail
             line scans (traditional and RFC 3339 stamps, qmail multilog and splogger), column
             cuts, event ids, reply codes and phases of delivery texts, the Postfix queue-id
             join (postfix_join.join_numpy's); each held to its
             Python/numpy definition, which is the fallback

Public API: engine.ingest(cfg, paths, ...), engine.follow(cfg, stop_event), engine.Engine,
session.watch_is_running(data_dir).
"""
