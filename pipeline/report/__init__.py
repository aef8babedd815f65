"""Report: per-carrier bounce-rate tables (sql/), charts and one HTML page, in English or Japanese.

  reports   the files of `report` and `clean`: generate() / write_report() (orchestrates the rest)
  figures   the tables: every report sql/ file over the event store -> Report (DataFrames)
  charts    matplotlib figures: data in, Figure out (per-figure fonts, no pyplot state)
  html      report.html: one self-contained page; daily tables collapsed by week
  csvfiles  formula-safe CSV bytes of one table (pipeline.core.csvsafe)
  cells     how one cell is shown to people: rates, days, one-line replies, names
  labels    every word shown to people, in English and Japanese (--lang, report.lang)
  fonts     the Japanese chart font (Debian: fonts-ipaexfont-gothic), or a warning
  notice    the template notice for customers whose handset filters refuse us
            (docs/handset-filters.md)
"""
