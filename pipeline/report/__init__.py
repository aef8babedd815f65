"""Report: per-carrier bounce-rate tables (sql/), charts and one HTML page.

  reports  the figures (SQL over the store) and the HTML/CSV files of `report` and `clean`
  charts   matplotlib figures: data in, Figure out
"""
