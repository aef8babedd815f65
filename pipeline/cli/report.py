"""CLI command `report`: per-carrier tables, charts and one HTML file (pipeline.report.reports)."""

from __future__ import annotations

import click

from .terminal import DAY, RATE

# terminal columns of the key figures (the rest are in the HTML and the CSV files)
TERMINAL_COLUMNS = ("carrier", "attempts", "delivered", "bounce_rate", "unknown_user_rate",
                    "filtered", "counted_errors")


def print_problems(written) -> None:
    """What --quiet still prints: chart warnings (a font missing) and the threshold alerts."""
    from ..report.cells import percent
    from ..report.labels import labels

    L = labels(written.lang)
    report = written.report
    for warning in written.warnings:
        click.echo(L("term.warning", text=warning), err=True)
    for carrier, rate in report.over_threshold():
        click.echo(L("term.alert", carrier=L.carrier(carrier), rate=percent(rate),
                     limit=percent(report.fail_over)), err=True)


def print_key_figures(written) -> None:
    from ..report.cells import display_table
    from ..report.labels import display_width, labels, pad

    L = labels(written.lang)
    report = written.report
    first, last = f"{report.first_day:%Y-%m-%d}", f"{report.last_day:%Y-%m-%d}"
    click.echo(L("term.period", first=first, last=last, tz=report.timezone))
    totals = report.tables["carrier_totals"]
    df = display_table(totals[list(TERMINAL_COLUMNS)], L)
    headers = {c: L.column(c) for c in TERMINAL_COLUMNS}
    widths = {c: max(display_width(headers[c]), *(display_width(str(v)) for v in df[c]))
              for c in TERMINAL_COLUMNS}

    def line(values: dict) -> str:
        return "  ".join(pad(str(values[c]), widths[c], "<" if c == "carrier" else ">")
                         for c in TERMINAL_COLUMNS).rstrip()

    click.echo(line(headers))
    over = {c for c, _ in report.over_threshold()}
    for code, rec in zip(totals["carrier"], df.to_dict("records")):
        click.echo(line(rec) + (L("term.over") if code in over else ""))
    click.echo(L("term.report", path=written.html))
    click.echo(L("term.files", csv=len(written.csv), png=len(written.charts), folder=written.html.parent))
    print_problems(written)


@click.command("report")
@click.option("--since", type=DAY, default=None, metavar="DATE",
              help="First local calendar day (YYYY-MM-DD). Default: the first stored day.")
@click.option("--until", type=DAY, default=None, metavar="DATE",
              help="Last local calendar day, inclusive (YYYY-MM-DD). Default: the last stored day.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Folder for report.html, the CSV tables and the PNG charts "
                   "(default: <data_dir>/reports, config report.dir).")
@click.option("--fail-over", type=RATE, default=None, metavar="RATE",
              help="Exit with status 2 when a carrier's unknown-user rate over the period exceeds "
                   "RATE (0.05 or 5%; 0 = off). Default: config report.fail_over.")
@click.option("--lang", type=click.Choice(["en", "ja"]), default=None,
              help="Language of the page, the CSV headers, the charts and this summary "
                   "(ja = 日本語). Default: the global --lang, else config report.lang (en).")
@click.option("-q", "--quiet", is_flag=True,
              help="Print only problems: the carriers over --fail-over and chart warnings (on stderr).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the key figures as JSON (README \"Scripting\"); the alerts still go to stderr.")
@click.pass_context
def report_cmd(ctx, since, until, out_dir, fail_over, lang, quiet, as_json):
    """Write per-carrier tables, charts and one self-contained HTML report.

    Prints the key figures per carrier: attempts, delivered, bounce rate, unknown-user rate,
    filtered (the customer's handset settings refused us) and counted errors. Definitions:
    docs/reports.md.

    Exit status: 0 written; 1 error; 2 a carrier's unknown-user rate exceeds --fail-over
    (the report is still written; the carriers over the threshold are printed).

    \b
    Examples:
      mailhygiene report --since 2026-11-01 --until 2026-11-30 --out reports/2026-11
      mailhygiene report --lang ja             # 日本語のレポート
      mailhygiene report --fail-over 0.04      # from cron (no bare %): exit 2 mails you
      mailhygiene report --quiet --fail-over 0.04   # silent unless a carrier is over
      mailhygiene report --json | jq '.carriers[] | select(.carrier == "docomo")'
    """
    from ..report.reports import generate, sending_domain_of, written_report_json

    app = ctx.obj
    cfg = app.cfg
    out = out_dir or cfg.path_in_data_dir(cfg.report.dir)
    written = generate(cfg.data_dir, out, cfg.report, cfg.rule, cfg.timezone_name, since, until,
                       fail_over=fail_over, lang=app.language(lang), excel=cfg.export.excel,
                       sending_domain=sending_domain_of(cfg.sender))
    if as_json:
        app.print_json(written_report_json(written))
        print_problems(written)
    elif app.quiet or quiet:
        print_problems(written)
    else:
        print_key_figures(written)
    if written.report.over_threshold():
        ctx.exit(2)
