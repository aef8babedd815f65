"""CLI command `report`: per-carrier tables, charts and one HTML file (pipeline.report.reports)."""

from __future__ import annotations

import click


def print_key_figures(written) -> None:
    from ..report.reports import key_figures

    report = written.report
    click.echo(f"period: {report.first_day:%Y-%m-%d} .. {report.last_day:%Y-%m-%d} "
               f"({report.timezone} days)")
    df = key_figures(report)
    cols = [c for c in df.columns if c not in ("hard bounces", "recipients", "alert")]
    widths = {c: max(len(c), *(len(str(v)) for v in df[c])) for c in cols}
    click.echo("  ".join(f"{c:<{widths[c]}}" if c == "carrier" else f"{c:>{widths[c]}}" for c in cols))
    for rec in df.to_dict("records"):
        line = "  ".join(f"{rec[c]:<{widths[c]}}" if c == "carrier" else f"{str(rec[c]):>{widths[c]}}"
                         for c in cols)
        click.echo(line + ("  << over" if rec.get("alert") else ""))
    click.echo(f"report: {written.html}")
    click.echo(f"tables: {len(written.csv)} CSV, charts: {len(written.charts)} PNG in {written.html.parent}")


@click.command("report")
@click.option("--since", default=None, metavar="DATE",
              help="First local calendar day (YYYY-MM-DD). Default: the first stored day.")
@click.option("--until", default=None, metavar="DATE",
              help="Last local calendar day, inclusive (YYYY-MM-DD). Default: the last stored day.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Folder for report.html, the CSV tables and the PNG charts "
                   "(default: <data_dir>/reports, config report.dir).")
@click.option("--fail-over", default=None, metavar="RATE",
              help="Exit with status 2 when a carrier's unknown-user rate over the period exceeds "
                   "RATE (0.05 or 5%%; 0 = off). Default: config report.fail_over.")
@click.pass_context
def report_cmd(ctx, since, until, out_dir, fail_over):
    """Write per-carrier tables, charts and one self-contained HTML report.

    Prints the key figures per carrier: attempts, delivered, bounce rate, unknown-user rate,
    filtered (the receiver refused us) and counted errors. Definitions: docs/reports.md.

    Exit status: 0 written; 1 error; 2 a carrier's unknown-user rate exceeds --fail-over
    (the report is still written; the carriers over the threshold are printed).

    \b
    Examples:
      mailhygiene report --since 2026-11-01 --until 2026-11-30 --out reports/2026-11
      mailhygiene report --fail-over 4%        # from cron: exit 2 mails you
    """
    from ..report.reports import generate

    cfg = ctx.obj.cfg
    out = out_dir or cfg.path_in_data_dir(cfg["report"]["dir"])
    written = generate(cfg, out, since, until, fail_over=fail_over)
    print_key_figures(written)
    over = written.report.over_threshold()
    if over:
        for carrier, rate in over:
            click.echo(f"ALERT: {carrier} unknown-user rate {rate * 100:.1f} % is over "
                       f"{written.report.fail_over * 100:.1f} %", err=True)
        ctx.exit(2)
