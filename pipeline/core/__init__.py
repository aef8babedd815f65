"""The floor every stage stands on; imports nothing from the stages above it.

  config      typed, validated settings per stage (every default once); load_config()
  config_doc  README's settings table, generated from config's dataclasses and field comments
  errors      small named exceptions the CLI turns into `Error: …` lines; unreadable_file()
              names a damaged Parquet file instead of the engine's error
  jsonout     the values of our records as plain JSON (the `--json` documents)
  fsutil      atomic file writes (temp + fsync + rename + directory fsync) and file locks
  owner       commands that write the data dir run as its owner, or stop with `Error: run as USER`
  backoff     exponential backoff with a cap (retries of the follower and the sender)
  clock       the wall clock, a monotonic clock and a wait in one object (tests drive it)
  vocabulary  the shared names: reasons, scopes, carriers, statuses, log formats
  csvsafe     formula safety of every CSV cell we write (key columns kept exactly)
  jptext      the Japanese text rules (tables, kana, the lenient decoder) of sender and doctor
  signals     Ctrl-C, SIGTERM, SIGHUP before and after a command: one line and 128 + the signal
"""
