"""Jobs: what runs on a schedule.

  clean  the nightly job: ingest the configured sources, run the rule, export, report (locked)
"""
