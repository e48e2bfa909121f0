"""The ``quality-report`` flow: how good was the data of the last 24 hours?

Reads the DuckDB file read-only (a writer holding the lock is waited for, within a bound)
and publishes three Prefect artifacts:

- ``quality-report`` (markdown): fill rates per field against the thresholds of
  ``[quality] min_fill_rate``, parser versions, date disagreements, failures by reason and
  the crawl runs of the window;
- ``quality-fill-rates`` (table): one row per field;
- ``quality-report-html`` (markdown): where the full HTML report of the window was written
  (``<paths.reports_dir>/quality-<YYYY-MM-DD>.html``, the same file ``baotintuc report``
  makes: charts, top words, fill rates, failures, parser versions) and its headline figures.
  Prefect artifacts cannot hold an HTML file, so the artifact links to the file instead.

A missing database or a missing table is reported as such, not raised: the report of a
machine that has not crawled yet says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from baotintuc.clock import VN_TZ
from baotintuc.model import REPORTED_COLUMNS, filled_sql
from config import load_settings
from flows.scorecard import FieldScore
from warehouse.db import connect


@dataclass(slots=True)
class QualityReport:
    db_path: str
    window_hours: int
    generated_at: str
    db_exists: bool = True
    articles: int = 0
    fill: list[FieldScore] = field(default_factory=list)
    parser_versions: dict[str, int] = field(default_factory=dict)
    date_disagreements: int = 0
    date_disagreement_examples: list[dict[str, Any]] = field(default_factory=list)
    failures_by_reason: dict[str, int] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failing_fields(self) -> list[str]:
        return [f.field for f in self.fill if f.passed is False]


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    rows = con.execute(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'main'"
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for table, column, dtype in rows:
        out.setdefault(str(table), {})[str(column)] = str(dtype).upper()
    return out


def compute_report(
    con: duckdb.DuckDBPyConnection,
    report: QualityReport,
    thresholds: dict[str, float],
    now: datetime | None = None,
) -> QualityReport:
    """Fill ``report`` from an open connection (tables that do not exist are noted)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(hours=report.window_hours)
    tables = _tables(con)
    arts = tables.get("articles")
    if arts is None:
        report.notes.append("no table articles (the warehouse has not been migrated yet)")
    else:
        time_col = "fetched_at" if "fetched_at" in arts else None
        where = f"where {time_col} >= ?" if time_col else ""
        args: list[Any] = [cutoff] if time_col else []
        fields = [f for f in REPORTED_COLUMNS if f in arts]
        sums = ", ".join(f"count(*) filter ({filled_sql(f, arts[f])})" for f in fields)
        row = con.execute(
            f"select count(*){', ' + sums if sums else ''} from articles {where}", args
        ).fetchone()
        assert row is not None
        report.articles = int(row[0])
        report.fill = [
            FieldScore(f, int(n), report.articles, thresholds.get(f))
            for f, n in zip(fields, row[1:], strict=True)
        ]
        if "parser_version" in arts:
            report.parser_versions = {
                str(v): int(n)
                for v, n in con.execute(
                    "select coalesce(parser_version, '(none)'), count(*) from articles "
                    f"{where} group by 1 order by 2 desc, 1",
                    args,
                ).fetchall()
            }
        if "date_disagreement" in arts:
            cond = "date_disagreement" + (f" and {time_col} >= ?" if time_col else "")
            n = con.execute(f"select count(*) from articles where {cond}", args).fetchone()
            report.date_disagreements = int(n[0]) if n else 0
            cols = [c for c in ("article_id", "published_at", "date_source", "url") if c in arts]
            if cols and report.date_disagreements:
                cur = con.execute(
                    f"select {', '.join(cols)} from articles where {cond} order by 1 limit 10",
                    args,
                )
                report.date_disagreement_examples = [
                    {c: (str(v) if v is not None else None) for c, v in zip(cols, r, strict=True)}
                    for r in cur.fetchall()
                ]
    fails = tables.get("fetch_failures")
    if fails is None:
        report.notes.append("no table fetch_failures")
    else:
        where = 'where "at" >= ?' if "at" in fails else ""
        args = [cutoff] if "at" in fails else []
        report.failures_by_reason = {
            str(r): int(n)
            for r, n in con.execute(
                f"select coalesce(reason, '(none)'), count(*) from fetch_failures {where} "
                "group by 1 order by 2 desc, 1",
                args,
            ).fetchall()
        }
    runs = tables.get("crawl_runs")
    if runs is not None and "started_at" in runs:
        cols = [
            c
            for c in ("run_id", "started_at", "status", "fetched", "new", "updated", "failed")
            if c in runs
        ]
        cur = con.execute(
            f"select {', '.join(cols)} from crawl_runs where started_at >= ? "
            "order by started_at desc limit 50",
            [cutoff],
        )
        report.runs = [
            {
                c: (v if isinstance(v, int | float) or v is None else str(v))
                for c, v in zip(cols, r, strict=True)
            }
            for r in cur.fetchall()
        ]
    return report


def build_report(
    db_path: Path,
    hours: int = 24,
    thresholds: dict[str, float] | None = None,
    lock_timeout: float = 60.0,
) -> QualityReport:
    """The report of ``db_path`` over the last ``hours``; a missing file gives an empty one."""
    report = QualityReport(
        db_path=str(db_path),
        window_hours=hours,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    if not db_path.exists():
        report.db_exists = False
        report.notes.append(f"no database at {db_path} yet: nothing has been ingested")
        return report
    con = connect(db_path, read_only=True, lock_timeout=lock_timeout)
    try:
        return compute_report(con, report, thresholds or {})
    finally:
        con.close()


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def render_markdown(r: QualityReport) -> str:
    lines = [
        f"# Data quality, last {r.window_hours} h",
        "",
        f"Database `{r.db_path}`, generated {r.generated_at} (UTC).",
        "",
    ]
    lines += [f"> {n}" for n in r.notes]
    if not r.db_exists:
        return "\n".join(lines) + "\n"
    lines += ["", f"**{r.articles}** articles fetched in the window.", ""]
    if r.fill:
        lines += ["## Fill rate per field", "", "| field | filled | rate | threshold | ok |"]
        lines += ["|---|---:|---:|---:|:---:|"]
        for f in r.fill:
            thr = _pct(f.threshold) if f.threshold is not None else ""
            ok = {True: "yes", False: "**NO**", None: ""}[f.passed]
            rate = _pct(f.fill_rate)
            lines.append(f"| {f.field} | {f.filled}/{f.total} | {rate} | {thr} | {ok} |")
        lines.append("")
    lines += ["## Parser versions", ""]
    lines += [f"- `{v}`: {n}" for v, n in r.parser_versions.items()] or ["- (none)"]
    lines += ["", "## Date disagreements", "", f"{r.date_disagreements} articles.", ""]
    for ex in r.date_disagreement_examples:
        lines.append("- " + ", ".join(f"{k}: {v}" for k, v in ex.items()))
    lines += ["", "## Failures by reason", ""]
    lines += [f"- `{k}`: {n}" for k, n in r.failures_by_reason.items()] or ["- (none)"]
    lines += ["", "## Crawl runs", ""]
    if r.runs:
        cols = list(r.runs[0])
        lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(str(run[c]) for c in cols) + " |" for run in r.runs]
    else:
        lines.append("(none)")
    return "\n".join(lines) + "\n"


@task(name="collect-quality", retries=1, retry_delay_seconds=10, persist_result=False)
def collect(
    db_path: Path, hours: int, thresholds: dict[str, float], lock_timeout: float
) -> QualityReport:
    return build_report(db_path, hours, thresholds, lock_timeout)


@task(name="write-html-report", retries=1, retry_delay_seconds=10, persist_result=False)
def write_html_report(
    db_path: Path, out: Path, hours: int, lock_timeout: float
) -> tuple[bool, str]:
    """The HTML report of the articles published in the window's Vietnam days: ``(written,
    one-line summary or why not)``."""
    if not db_path.exists():
        return False, f"no database at `{db_path}` yet"
    from warehouse.report.build import write_report

    since = (datetime.now(UTC) - timedelta(hours=hours)).astimezone(VN_TZ).date()
    con = connect(db_path, read_only=True, lock_timeout=lock_timeout)
    try:
        data = write_report(con, out, db_path=str(db_path), since=since)
    except duckdb.Error as exc:  # e.g. a warehouse from before the analysis views
        get_run_logger().warning("HTML report not written: %s", exc, exc_info=True)
        return False, f"it could not be written ({str(exc).splitlines()[0]})"
    finally:
        con.close()
    failures = sum(n for _, n in data.failures)
    return True, (
        f"{data.articles} articles published since {since}, {failures} failures, "
        f"{len(data.parser_series)} parser version(s)"
    )


@flow(name="quality-report", log_prints=True)
def quality_report(db_path: str | None = None, hours: int = 24) -> QualityReport:
    """Publish the quality of the last ``hours`` of ingested data as Prefect artifacts."""
    settings = load_settings()
    db = Path(db_path) if db_path else settings.paths.db_path
    report = collect(
        db, hours, dict(settings.quality.min_fill_rate), settings.warehouse.lock_timeout_seconds
    )
    create_markdown_artifact(
        key="quality-report",
        markdown=render_markdown(report),
        description=f"baotintuc data quality, last {hours} h",
    )
    create_table_artifact(
        key="quality-fill-rates",
        table=[
            {
                "field": f.field,
                "filled": f.filled,
                "total": f.total,
                "fill_rate": round(f.fill_rate, 4),
                "threshold": f.threshold,
                "passed": f.passed,
            }
            for f in report.fill
        ]
        or [{"field": "(no articles)", "filled": 0, "total": 0}],
        description=f"fill rate per field of the articles fetched in the last {hours} h",
    )
    html = settings.paths.reports_dir / f"quality-{datetime.now(VN_TZ).date().isoformat()}.html"
    written, headline = write_html_report(
        db, html, hours, settings.warehouse.lock_timeout_seconds
    )
    if not written:
        html_md = f"# Full report\n\nNo HTML report: {headline}."
    else:
        html_md = (
            f"# Full report\n\n[{html.name}]({html.resolve().as_uri()}) — `{html.resolve()}`"
            f"\n\n{headline}. Self-contained HTML (charts inline): open it in any "
            "browser, offline; `baotintuc report --since … --out …` makes one for any window."
        )
    create_markdown_artifact(
        key="quality-report-html",
        markdown=html_md,
        description="where the nightly HTML report was written",
    )
    get_run_logger().info(
        "quality report: %d articles, failing fields %s, %d failures, %d date disagreements",
        report.articles,
        report.failing_fields or "none",
        sum(report.failures_by_reason.values()),
        report.date_disagreements,
    )
    return report


if __name__ == "__main__":
    print(render_markdown(quality_report()))
