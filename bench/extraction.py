"""Extraction benchmark: labelled baotintuc fixtures and the ScrapingHub (Zyte) AEB set.

Usage::

    python -m bench.extraction [--aeb-dir DIR] [--fixtures DIR] [--json OUT] [--check]
                               [--limit N] [--variants] [--generic MODULE:FUNC]

Part 1 (fixtures): per-field exact-match rate of ``baotintuc.parsers.parse_article`` against
``expected.json``, body token F1 (mean, worst page) and pages per second.
Part 2 (AEB): the project's generic body path against trafilatura with the AEB
repository's own settings (``extract(html, include_comments=False)``), with those settings
plus ``favor_precision=True``, and with the library defaults, on the same pages in the same
run: token precision/recall/F1 and ms per page.

The metric is the AEB README's: token-level precision, recall and F1 of the extracted body
against the true body, computed per page (multiset of tokens) and averaged over pages.
Tokens are NFC-normalised, lowercased ``\\w+`` runs (punctuation splits words). The same
tokeniser scores both extractors and the fixtures. For comparison with the published AEB
figures the report also gives the upstream 4-gram shingle F1 (``ngram=4``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import importlib
import json
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FIXTURES = REPO_ROOT / "tests" / "resources" / "baotintuc"
AEB_DIR = REPO_ROOT / "bench" / "aeb"
BODY_FIELDS = frozenset({"body_text", "body_markdown"})
BODY_F1_TARGET = 0.98
TIMED_PASSES = 3

# A body extractor: (html, url) -> body text ("" when nothing was extracted).
Extractor = Callable[[bytes, str], str]


# --------------------------------------------------------------------------- metric

_TOKEN_RE = re.compile(r"\w+")


def local_tokenize(text: str | None) -> list[str]:
    """NFC-normalised, lowercased word tokens; punctuation and whitespace separate them."""
    if not text:
        return []
    return _TOKEN_RE.findall(unicodedata.normalize("NFC", text).lower())


def _project_tokenizer() -> tuple[str, Callable[[str | None], list[str]]]:
    # The project's own unit of token_f1 (clean_text, lower, \w+) when it is importable, so
    # that bench figures and baotintuc.text.token_f1 agree; else the same rule implemented here.
    try:
        from baotintuc.text import tokens
    except ImportError:
        return "bench.extraction.local_tokenize (NFC, lowercased \\w+)", local_tokenize
    return "baotintuc.text.tokens (clean_text, lowercased \\w+)", tokens


TOKENIZER_NAME, _tokenize = _project_tokenizer()


def tokenize(text: str | None) -> list[str]:
    """The tokens every score in this module counts (see ``TOKENIZER_NAME``)."""
    return _tokenize(text)


def _shingles(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    # Same windowing as the upstream AEB evaluate.py: a text shorter than n is one shingle.
    if n <= 1:
        return Counter((t,) for t in tokens)
    return Counter(
        tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n]
    )


@dataclass(frozen=True, slots=True)
class PRF:
    precision: float
    recall: float
    f1: float


def token_prf(truth: str | None, pred: str | None, ngram: int = 1) -> PRF:
    """Token (or n-gram shingle) precision, recall and F1 of ``pred`` against ``truth``.

    Counts are multisets: a token predicted twice but true once gives one hit and one miss.
    Both empty -> 1.0 everywhere; one empty or no overlap -> 0.0 everywhere.
    """
    t = _shingles(tokenize(truth), ngram)
    p = _shingles(tokenize(pred), ngram)
    if not t and not p:
        return PRF(1.0, 1.0, 1.0)
    tp = sum((t & p).values())
    if tp == 0:
        return PRF(0.0, 0.0, 0.0)
    precision = tp / sum(p.values())
    recall = tp / sum(t.values())
    return PRF(precision, recall, 2 * precision * recall / (precision + recall))


# --------------------------------------------------------------------------- tables


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain left/right aligned text table (numbers right-aligned)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(headers))
    ]
    lines = []
    for k, row in enumerate(cells):
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _is_number(s: str) -> bool:
    try:
        float(s.rstrip("%"))
    except ValueError:
        return s in {"-", ""}
    return True


def _short(v: Any, n: int = 70) -> str:
    s = json.dumps(v, ensure_ascii=False, default=str)
    return s if len(s) <= n else s[: n - 1] + "…"


# --------------------------------------------------------------------------- part 1


@dataclass(slots=True)
class FixtureCase:
    name: str
    url: str
    layout: str | None
    expected: dict[str, Any]
    html: bytes


def load_fixtures(fixtures_dir: Path) -> list[FixtureCase]:
    """Read ``expected.json`` and each ``<name>.html.gz`` (or ``<name>`` if it ends in .gz)."""
    spec = json.loads((fixtures_dir / "expected.json").read_text(encoding="utf-8"))
    cases = []
    for name, entry in sorted(spec.items()):
        path = fixtures_dir / (name if name.endswith(".gz") else f"{name}.html.gz")
        if not path.exists() and (fixtures_dir / name).exists():
            path = fixtures_dir / name
        raw = path.read_bytes()
        html = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        cases.append(
            FixtureCase(
                name=name,
                url=entry["url"],
                layout=entry.get("layout"),
                expected=dict(entry.get("expected", {})),
                html=html,
            )
        )
    return cases


def normalise_value(v: Any) -> Any:
    """Plain JSON-like form for comparison: datetimes as ISO strings, dataclasses as dicts."""
    if isinstance(v, datetime | date):
        return v.isoformat()
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: normalise_value(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, list | tuple):
        return [normalise_value(x) for x in v]
    if isinstance(v, dict):
        return {k: normalise_value(x) for k, x in v.items()}
    return v


_MISSING = object()


@dataclass(slots=True)
class FieldScore:
    matched: int = 0
    total: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.matched / self.total if self.total else 1.0


@dataclass(slots=True)
class FixtureReport:
    pages: int
    parse_errors: dict[str, str]
    fields: dict[str, FieldScore]
    body_f1: dict[str, float]
    pages_per_second: float | None
    pass_seconds: list[float]
    cross_check_max_diff: float | None = None  # |bench F1 - baotintuc.text.token_f1|

    @property
    def body_f1_mean(self) -> float | None:
        return statistics.fmean(self.body_f1.values()) if self.body_f1 else None

    @property
    def body_f1_worst(self) -> tuple[str, float] | None:
        if not self.body_f1:
            return None
        name = min(self.body_f1, key=lambda k: (self.body_f1[k], k))
        return name, self.body_f1[name]

    def targets(self) -> list[tuple[str, bool, str]]:
        out = []
        for name, fs in sorted(self.fields.items()):
            out.append((f"{name} exact = 100%", fs.rate == 1.0, f"{fs.matched}/{fs.total}"))
        worst = self.body_f1_worst
        if worst is not None:
            out.append(
                (
                    f"body F1 >= {BODY_F1_TARGET} on every page",
                    worst[1] >= BODY_F1_TARGET,
                    f"worst {worst[1]:.4f} ({worst[0]})",
                )
            )
        if self.parse_errors:
            out.append(("every page parses", False, f"{len(self.parse_errors)} ParseError"))
        return out


def evaluate_fixtures(
    cases: Sequence[FixtureCase],
    parse: Callable[[bytes, str], Any],
    passes: int = TIMED_PASSES,
    project_f1: Callable[[str, str], float] | None = None,
) -> FixtureReport:
    """Score ``parse`` (``parse_article``) on the labelled cases and time it."""
    fields: dict[str, FieldScore] = {}
    body_f1: dict[str, float] = {}
    errors: dict[str, str] = {}
    diffs: list[float] = []
    for case in cases:
        try:
            article = parse(case.html, case.url)
        except Exception as exc:  # ParseError or a bug: both count as a failed page
            errors[case.name] = f"{type(exc).__name__}: {exc}"
            article = None
        for fname, want in case.expected.items():
            if fname in BODY_FIELDS:
                continue
            fs = fields.setdefault(fname, FieldScore())
            fs.total += 1
            got = getattr(article, fname, _MISSING) if article is not None else _MISSING
            got_n = "<missing>" if got is _MISSING else normalise_value(got)
            want_n = normalise_value(want)
            if got_n == want_n:
                fs.matched += 1
            else:
                fs.mismatches.append({"page": case.name, "expected": want_n, "actual": got_n})
        if "body_text" in case.expected:
            got_body = getattr(article, "body_text", "") if article is not None else ""
            body_f1[case.name] = token_prf(case.expected["body_text"], got_body).f1
            if project_f1 is not None:
                theirs = project_f1(got_body, case.expected["body_text"])
                diffs.append(abs(theirs - body_f1[case.name]))
    pass_seconds = time_passes(cases, parse, passes) if cases else []
    pps = len(cases) / statistics.median(pass_seconds) if pass_seconds else None
    return FixtureReport(
        pages=len(cases),
        parse_errors=errors,
        fields=fields,
        body_f1=body_f1,
        pages_per_second=pps,
        pass_seconds=pass_seconds,
        cross_check_max_diff=max(diffs) if diffs else None,
    )


def time_passes(
    cases: Sequence[FixtureCase], parse: Callable[[bytes, str], Any], passes: int
) -> list[float]:
    """One untimed warm-up pass, then ``passes`` timed passes over all cases (seconds each)."""

    def one_pass() -> float:
        t0 = time.perf_counter()
        for case in cases:
            with contextlib.suppress(Exception):  # failures are scored elsewhere; time them too
                parse(case.html, case.url)
        return time.perf_counter() - t0

    one_pass()
    return [one_pass() for _ in range(passes)]


def print_fixture_report(rep: FixtureReport, out: Callable[[str], None] = print) -> None:
    out(f"pages: {rep.pages}   parse errors: {len(rep.parse_errors)}")
    for name, why in sorted(rep.parse_errors.items()):
        out(f"  ParseError {name}: {why}")
    out("")
    rows = [
        (name, fs.matched, fs.total, f"{100 * fs.rate:.1f}%")
        for name, fs in sorted(rep.fields.items())
    ]
    out(format_table(["field", "exact", "of", "rate"], rows))
    bad = [(n, fs) for n, fs in sorted(rep.fields.items()) if fs.mismatches]
    if bad:
        out("")
        out("mismatches (first 3 per field):")
        for n, fs in bad:
            for m in fs.mismatches[:3]:
                out(f"  {n} @ {m['page']}: expected {_short(m['expected'])}")
                out(f"  {' ' * len(n)}   {' ' * len(m['page'])} actual   {_short(m['actual'])}")
    out("")
    if rep.body_f1:
        worst = rep.body_f1_worst
        assert worst is not None
        out(
            f"body token F1: mean {rep.body_f1_mean:.4f}   worst {worst[1]:.4f} ({worst[0]})"
            f"   pages below {BODY_F1_TARGET}: "
            f"{sum(1 for v in rep.body_f1.values() if v < BODY_F1_TARGET)}"
        )
        if rep.cross_check_max_diff is not None:
            out(
                "  cross-check vs baotintuc.text.token_f1: max |diff| "
                f"{rep.cross_check_max_diff:.4f}"
            )
    else:
        out("body token F1: no page has an expected body_text")
    if rep.pages_per_second is not None:
        secs = ", ".join(f"{s * 1000:.1f}" for s in rep.pass_seconds)
        out(
            f"speed: {rep.pages_per_second:.1f} pages/s "
            f"(median of {len(rep.pass_seconds)} passes after warm-up; pass ms: {secs})"
        )
    out("")
    rows2 = [(("PASS" if ok else "FAIL"), name, detail) for name, ok, detail in rep.targets()]
    out(format_table(["", "target", "measured"], rows2))


# --------------------------------------------------------------------------- part 2


@dataclass(slots=True)
class AebPage:
    id: str
    url: str
    truth: str
    html: bytes


def default_aeb_dir() -> Path:
    """``bench/aeb`` of the checkout: the AEB data ships with the repository (MIT)."""
    return AEB_DIR


def load_aeb(aeb_dir: Path, limit: int | None = None) -> list[AebPage]:
    """The AEB pages sorted by id (the first ``limit`` of them when given)."""
    truth = json.loads((aeb_dir / "ground-truth.json").read_text(encoding="utf-8"))
    ids = sorted(truth)[:limit] if limit else sorted(truth)
    return [
        AebPage(
            id=i,
            url=truth[i]["url"],
            truth=truth[i]["articleBody"],
            html=gzip.decompress((aeb_dir / "html" / f"{i}.html.gz").read_bytes()),
        )
        for i in ids
    ]


def plain_trafilatura(html: bytes, url: str) -> str:
    """``trafilatura.extract`` with the library defaults (comments included)."""
    import trafilatura

    return trafilatura.extract(html, url=url) or ""


def aeb_trafilatura(html: bytes, url: str) -> str:
    """trafilatura with the AEB settings: the page decoded as UTF-8, no URL,
    ``extract(html, include_comments=False)``. ``bench/aeb/README.md`` does not record
    the upstream settings: these are the library defaults with comments off (see
    bench/README.md)."""
    import trafilatura

    return trafilatura.extract(html.decode("utf-8"), include_comments=False) or ""


def aeb_trafilatura_precision(html: bytes, url: str) -> str:
    """The AEB settings plus ``favor_precision=True``."""
    import trafilatura

    return trafilatura.extract(
        html.decode("utf-8"), include_comments=False, favor_precision=True
    ) or ""


AEB_SETTINGS = "trafilatura (AEB: include_comments=False)"
AEB_PRECISION = "trafilatura (AEB + favor_precision)"
LIBRARY_DEFAULTS = "trafilatura (library defaults)"
REFERENCES: dict[str, Extractor] = {
    AEB_SETTINGS: aeb_trafilatura,
    AEB_PRECISION: aeb_trafilatura_precision,
    LIBRARY_DEFAULTS: plain_trafilatura,
}
AEB_F1_TARGET = 0.975  # the generic path's goal
AEB_TIME_TARGET = 1.2  # at most this many times the AEB-settings trafilatura's ms/page


def trafilatura_with(**options: Any) -> Extractor:
    """A trafilatura extractor with extra options (to prototype a generic-path fix)."""
    import trafilatura

    def run(html: bytes, url: str) -> str:
        return trafilatura.extract(html, url=url, **options) or ""

    return run


# Functions (html, url) -> body that baotintuc.parsers.generic may expose, tried in order.
def _as_body(result: Any) -> str:
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    if isinstance(result, dict):
        return str(result.get("body_text") or result.get("text") or "")
    for attr in ("body_text", "text"):
        value = getattr(result, attr, None)
        if isinstance(value, str):
            return value
    raise TypeError(f"cannot read a body from {type(result).__name__}")


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def resolve_generic(spec: str | None = None) -> tuple[str, Extractor]:
    """The project's generic body path as an ``Extractor`` and its name.

    ``spec`` = ``module:function`` called as ``function(html, url)``; default
    ``baotintuc.parsers.generic:generic_body``. Raises ``ImportError``/``LookupError``.
    """
    mod_name, _, fn_name = (spec or "baotintuc.parsers.generic:generic_body").partition(":")
    fn = getattr(importlib.import_module(mod_name), fn_name, None)
    if not callable(fn):
        raise LookupError(f"{mod_name} has no {fn_name}")
    target: Callable[..., Any] = fn

    def run(html: bytes, url: str) -> str:
        return _as_body(target(html, url))

    return f"{mod_name}.{fn_name}", run


def diagnose_extractors() -> dict[str, Extractor]:
    """The generic body path with one step switched off (``--diagnose``): what each step
    buys, page by page."""
    from baotintuc.parsers.generic import generic_body

    def ablation(**steps: bool) -> Extractor:
        return lambda html, url: generic_body(html, url, **steps)

    return {
        "generic without split-body join": ablation(join_split=False),
        "generic without recall escalation": ablation(escalate=False),
        "generic without both": ablation(join_split=False, escalate=False),
    }


def upstream_f1(prfs: Iterable[PRF]) -> float:
    """The AEB repository's headline F1: harmonic mean of the page-averaged P and R."""
    items = list(prfs)
    p = statistics.fmean(x.precision for x in items)
    r = statistics.fmean(x.recall for x in items)
    return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(slots=True)
class ExtractorRun:
    name: str
    prf: dict[str, PRF] = field(default_factory=dict)
    shingle: dict[str, PRF] = field(default_factory=dict)  # 4-gram shingles (upstream)
    ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    empty: int = 0

    def mean(self, attr: str) -> float:
        return statistics.fmean(getattr(v, attr) for v in self.prf.values())

    @property
    def upstream_f1(self) -> float:
        return upstream_f1(self.shingle.values())

    @property
    def ms_per_page(self) -> float:
        return statistics.fmean(self.ms.values())

    @property
    def ms_median(self) -> float:
        return statistics.median(self.ms.values())

    def summary(self) -> dict[str, Any]:
        return {
            "precision": self.mean("precision"),
            "recall": self.mean("recall"),
            "f1": self.mean("f1"),
            "f1_upstream_4gram": self.upstream_f1,
            "ms_per_page": self.ms_per_page,
            "ms_median": self.ms_median,
            "empty": self.empty,
            "errors": len(self.errors),
        }


def evaluate_extractors(
    pages: Sequence[AebPage], extractors: dict[str, Extractor]
) -> dict[str, ExtractorRun]:
    """Run every extractor on every page (order rotated per page), score and time each call.

    One untimed warm-up call per extractor on the first page comes first. An exception
    counts as an empty extraction and is recorded.
    """
    runs = {name: ExtractorRun(name) for name in extractors}
    names = list(extractors)
    if pages:
        for name in names:
            with contextlib.suppress(Exception):  # warm-up only; the scored call records it
                extractors[name](pages[0].html, pages[0].url)
    for k, page in enumerate(pages):
        order = names[k % len(names) :] + names[: k % len(names)]
        for name in order:
            run = runs[name]
            t0 = time.perf_counter()
            try:
                body = extractors[name](page.html, page.url)
            except Exception as exc:
                body = ""
                run.errors[page.id] = f"{type(exc).__name__}: {exc}"
            run.ms[page.id] = (time.perf_counter() - t0) * 1000
            if not body.strip():
                run.empty += 1
            run.prf[page.id] = token_prf(page.truth, body)
            run.shingle[page.id] = token_prf(page.truth, body, ngram=4)
    return runs


def print_aeb_report(
    runs: dict[str, ExtractorRun],
    baselines: Sequence[str],
    candidate: str | None,
    out: Callable[[str], None] = print,
) -> None:
    rows = []
    for name, run in runs.items():
        s = run.summary()
        rows.append(
            (
                name,
                s["precision"],
                s["recall"],
                s["f1"],
                s["f1_upstream_4gram"],
                f"{s['ms_per_page']:.1f}",
                f"{s['ms_median']:.1f}",
                s["empty"],
                s["errors"],
            )
        )
    headers = [
        "extractor",
        "precision",
        "recall",
        "F1",
        "F1 upstream",
        "ms/page",
        "ms med",
        "empty",
        "errors",
    ]
    out(format_table(headers, rows))
    if candidate is None or candidate not in runs:
        return
    for base in baselines:
        if base in runs:
            out("")
            print_delta(runs[base], runs[candidate], out)


def print_delta(a: ExtractorRun, b: ExtractorRun, out: Callable[[str], None] = print) -> None:
    """Mean deltas of ``b`` against ``a`` and the pages ``b`` loses and wins (|dF1| > 0.005)."""
    out(
        f"delta {b.name} - {a.name}: "
        f"precision {b.mean('precision') - a.mean('precision'):+.4f}   "
        f"recall {b.mean('recall') - a.mean('recall'):+.4f}   "
        f"F1 {b.mean('f1') - a.mean('f1'):+.4f}   "
        f"F1 upstream {b.upstream_f1 - a.upstream_f1:+.4f}   "
        f"time x{b.ms_per_page / a.ms_per_page:.2f}"
    )
    per_page = {i: b.prf[i].f1 - a.prf[i].f1 for i in a.prf}
    worse = sorted((d, i) for i, d in per_page.items() if d < -0.005)
    better = sorted(((d, i) for i, d in per_page.items() if d > 0.005), reverse=True)
    out(
        f"pages: {len(worse)} worse, {len(better)} better, "
        f"{len(per_page) - len(worse) - len(better)} same (|dF1| <= 0.005)"
    )
    for label, rows in (("loses", worse[:8]), ("wins ", better[:8])):
        for d, i in rows:
            out(
                f"  {label} {i[:12]} dF1 {d:+.3f}  P {a.prf[i].precision:.3f}->"
                f"{b.prf[i].precision:.3f}  R {a.prf[i].recall:.3f}->{b.prf[i].recall:.3f}"
                f"  {b.errors.get(i, '')[:60]}"
            )
    for i, why in list(b.errors.items())[:5]:
        out(f"  error on {i[:12]}: {why[:100]}")


VARIANTS: dict[str, dict[str, Any]] = {
    "favor_recall": {"favor_recall": True},
    "favor_precision": {"favor_precision": True},
    "include_tables=False": {"include_tables": False},
    "include_comments=False": {"include_comments": False},
    "fast": {"fast": True},
    "output_format=markdown": {"output_format": "markdown"},
    "with_metadata (text)": {"with_metadata": True},
    "favor_precision+include_comments=False": {"favor_precision": True, "include_comments": False},
}


# --------------------------------------------------------------------------- speed


def real_fixture_pages(fixtures_dir: Path = DEFAULT_FIXTURES) -> list[tuple[bytes, str]]:
    """``(html, url)`` of the real (not reconstructed) fixture pages."""
    spec = json.loads((fixtures_dir / "expected.json").read_text(encoding="utf-8"))
    return [
        (gzip.decompress((fixtures_dir / f"{name}.html.gz").read_bytes()), entry["url"])
        for name, entry in sorted(spec.items())
        if not entry.get("synthetic")
    ]


def speed_worker(kind: str, fixtures_dir: str) -> None:
    """Timing worker (run in a subprocess by :func:`compare_speed`): one pass over the real
    fixture pages per line read on stdin, its seconds written to stdout.

    ``kind``: ``parse`` (``baotintuc.parsers.parse_article`` of whatever ``baotintuc`` is
    first on ``sys.path``) or ``bare`` (``trafilatura.extract(html)`` with its defaults).
    """
    pages = real_fixture_pages(Path(fixtures_dir))
    if kind == "parse":
        from baotintuc.parsers import parse_article

        def one(html: bytes, url: str) -> object:
            return parse_article(html, url)
    else:
        import trafilatura

        def one(html: bytes, url: str) -> object:
            return trafilatura.extract(html)

    print(len(pages), flush=True)
    for _ in sys.stdin:
        t0 = time.perf_counter()
        for html, url in pages:
            one(html, url)
        print(time.perf_counter() - t0, flush=True)


class _Worker:
    def __init__(self, kind: str, core: Path, fixtures_dir: Path) -> None:
        code = (
            f"import sys; sys.path[:0] = [{str(core)!r}, {str(REPO_ROOT)!r}]; "
            f"from bench.extraction import speed_worker; "
            f"speed_worker({kind!r}, {str(fixtures_dir)!r})"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True, cwd=core,
        )
        assert self.proc.stdout is not None
        self.pages = int(self.proc.stdout.readline())

    def one_pass(self) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def export_core(ref: str, into: Path) -> Path:
    """``baotintuc/`` as of git revision ``ref``, extracted under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", "--format=tar", ref, "baotintuc"],
        check=True, capture_output=True,
    ).stdout
    tar_path = into / "core.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into


def compare_speed(
    ref: str | None, rounds: int = 7, fixtures_dir: Path = DEFAULT_FIXTURES
) -> dict[str, Any]:
    """ms/page of ``parse_article`` (this checkout, and ``ref`` when given) and of bare
    ``trafilatura.extract`` over the real fixture pages, interleaved in one run.

    Each contender runs in its own long-lived subprocess (so two versions of ``baotintuc``
    can be timed side by side); after one warm-up pass each, the contenders take turns,
    one pass at a time, so machine noise falls on all of them alike. Reported: the median
    pass per contender and the ratios of those medians.
    """
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        contenders = {"parse_article (this checkout)": ("parse", REPO_ROOT)}
        if ref:
            contenders[f"parse_article ({ref})"] = ("parse", export_core(ref, Path(tmp)))
        contenders["trafilatura.extract(html) (bare)"] = ("bare", REPO_ROOT)
        workers = {n: _Worker(kind, core, fixtures_dir) for n, (kind, core) in contenders.items()}
        try:
            seconds: dict[str, list[float]] = {n: [] for n in workers}
            for w in workers.values():
                w.one_pass()  # warm-up
            names = list(workers)
            for r in range(rounds):
                for n in names[r % len(names):] + names[: r % len(names)]:
                    seconds[n].append(workers[n].one_pass())
        finally:
            for w in workers.values():
                w.close()
    pages = next(iter(workers.values())).pages
    ms = {n: 1000 * statistics.median(v) / pages for n, v in seconds.items()}
    return {"pages": pages, "rounds": rounds, "ms_per_page": ms,
            "pass_seconds": seconds}


def print_speed_report(rep: dict[str, Any], out: Callable[[str], None] = print) -> None:
    ms = rep["ms_per_page"]
    bare = next(v for n, v in ms.items() if n.startswith("trafilatura"))
    current = ms["parse_article (this checkout)"]
    rows = [
        (n, f"{v:.2f}", f"{1000 / v:.1f}", f"{v / bare:.2f}", f"{v / current:.2f}")
        for n, v in ms.items()
    ]
    out(f"pages: {rep['pages']} real fixtures   rounds: {rep['rounds']} (interleaved, median)")
    out(format_table(["contender", "ms/page", "pages/s", "x bare trafilatura",
                      "x this checkout"], rows))


# --------------------------------------------------------------------------- main


def _project_token_f1() -> Callable[[str, str], float] | None:
    try:
        module = importlib.import_module("baotintuc.text")
    except ImportError:
        return None
    fn = getattr(module, "token_f1", None)
    return fn if callable(fn) else None


def run_fixtures(fixtures_dir: Path, result: dict[str, Any]) -> bool | None:
    """Part 1. Returns whether all targets pass, or None when it could not run."""
    print("== 1. baotintuc fixtures: baotintuc.parsers.parse_article ==")
    if not (fixtures_dir / "expected.json").exists():
        print(f"SKIP: no {fixtures_dir / 'expected.json'}")
        result["fixtures"] = {"skipped": "no expected.json"}
        return None
    try:
        from baotintuc.parsers import parse_article
    except ImportError as exc:
        print(f"SKIP: baotintuc.parsers.parse_article not importable ({exc})")
        result["fixtures"] = {"skipped": f"import: {exc}"}
        return None
    cases = load_fixtures(fixtures_dir)
    rep = evaluate_fixtures(cases, parse_article, project_f1=_project_token_f1())
    print_fixture_report(rep)
    targets = rep.targets()
    result["fixtures"] = {
        "pages": rep.pages,
        "parse_errors": rep.parse_errors,
        "fields": {
            n: {
                "matched": fs.matched,
                "total": fs.total,
                "rate": fs.rate,
                "mismatches": fs.mismatches,
            }
            for n, fs in sorted(rep.fields.items())
        },
        "body_f1": rep.body_f1,
        "body_f1_mean": rep.body_f1_mean,
        "body_f1_worst": rep.body_f1_worst,
        "pages_per_second": rep.pages_per_second,
        "pass_seconds": rep.pass_seconds,
        "cross_check_max_diff": rep.cross_check_max_diff,
        "targets": [{"target": n, "pass": ok, "measured": d} for n, ok, d in targets],
    }
    return bool(targets) and all(ok for _, ok, _ in targets)


def aeb_targets(runs: dict[str, ExtractorRun], candidate: str) -> list[tuple[str, bool, str]]:
    """The generic path's goals: F1 above both AEB settings, at least ``AEB_F1_TARGET``, and
    at most ``AEB_TIME_TARGET`` times the AEB-settings trafilatura's time per page."""
    gen = runs[candidate]
    out = []
    for base in (AEB_SETTINGS, AEB_PRECISION):
        f1 = runs[base].mean("f1")
        out.append((f"AEB generic F1 > {base}", gen.mean("f1") > f1,
                    f"{gen.mean('f1'):.4f} vs {f1:.4f}"))
    out.append((f"AEB generic F1 >= {AEB_F1_TARGET}", gen.mean("f1") >= AEB_F1_TARGET,
                f"{gen.mean('f1'):.4f}"))
    ratio = gen.ms_per_page / runs[AEB_SETTINGS].ms_per_page
    out.append((f"AEB generic time <= {AEB_TIME_TARGET} x {AEB_SETTINGS}",
                ratio <= AEB_TIME_TARGET, f"x{ratio:.2f}"))
    return out


def run_aeb(
    aeb_dir: Path,
    result: dict[str, Any],
    limit: int | None,
    variants: bool,
    generic_spec: str | None,
    diagnose: bool = False,
) -> bool | None:
    """Part 2. Returns whether every generic-path target passes (False when the data is
    missing), or None when there is no generic path to compare."""
    print("== 2. ScrapingHub article-extraction benchmark (AEB) ==")
    if not (aeb_dir / "ground-truth.json").exists():
        print(f"FAIL: AEB data not found at {aeb_dir} (it ships in bench/aeb; see --aeb-dir)")
        result["aeb"] = {"missing": str(aeb_dir)}
        return False
    pages = load_aeb(aeb_dir, limit)
    extractors: dict[str, Extractor] = dict(REFERENCES)
    candidate: str | None = None
    try:
        gname, gfn = resolve_generic(generic_spec)
        candidate = f"generic: {gname}"
        extractors[candidate] = gfn
    except (ImportError, LookupError) as exc:
        print(f"generic path unavailable: {exc} (trafilatura only)")
    if diagnose and candidate is not None:
        extractors.update(diagnose_extractors())
    if variants:
        for vname, opts in VARIANTS.items():
            extractors[f"trafilatura {vname}"] = trafilatura_with(**opts)
    print(
        f"pages: {len(pages)}   tokens: {TOKENIZER_NAME}\n"
        "metric: multiset token P/R/F1 per page, each averaged over pages; 'F1 upstream' = "
        "the AEB repo's headline (4-gram shingles, F1 of mean P and mean R)"
    )
    print("")
    runs = evaluate_extractors(pages, extractors)
    print_aeb_report(runs, [AEB_SETTINGS, AEB_PRECISION], candidate)
    if diagnose and candidate is not None:
        for name in diagnose_extractors():
            print("")
            print_delta(runs[name], runs[candidate])
    result["aeb"] = {
        "pages": len(pages),
        "extractors": {n: r.summary() for n, r in runs.items()},
        "per_page_f1": {n: {i: p.f1 for i, p in r.prf.items()} for n, r in runs.items()},
        "errors": {n: r.errors for n, r in runs.items() if r.errors},
    }
    if candidate is None:
        return None
    targets = aeb_targets(runs, candidate)
    result["aeb"]["targets"] = [{"target": n, "pass": ok, "measured": d} for n, ok, d in targets]
    print("")
    print(format_table(["", "target", "measured"],
                       [("PASS" if ok else "FAIL", n, d) for n, ok, d in targets]))
    return all(ok for _, ok, _ in targets)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.extraction",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--aeb-dir",
        type=Path,
        default=None,
        help=f"AEB data (default: {AEB_DIR.relative_to(REPO_ROOT)})",
    )
    ap.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    ap.add_argument("--json", type=Path, default=None, help="write every figure here")
    ap.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a target fails (or the fixtures cannot be scored)",
    )
    ap.add_argument("--limit", type=int, default=None, help="only the first N AEB pages")
    ap.add_argument(
        "--variants", action="store_true", help="also score trafilatura option variants on AEB"
    )
    ap.add_argument(
        "--diagnose",
        action="store_true",
        help="also score prototypes of the generic body path (pruning, sapo drop)",
    )
    ap.add_argument(
        "--generic",
        default=None,
        metavar="MODULE:FUNC",
        help="the generic body path (default: found in baotintuc.parsers.generic)",
    )
    ap.add_argument(
        "--speed",
        action="store_true",
        help="only the speed comparison: parse_article vs bare trafilatura.extract, "
        "interleaved on the real fixture pages (see --speed-ref)",
    )
    ap.add_argument(
        "--speed-ref",
        default=None,
        metavar="GIT_REF",
        help="with --speed: also time parse_article as of this git revision (before/after)",
    )
    ap.add_argument("--speed-rounds", type=int, default=7)
    ap.add_argument("--skip-aeb", action="store_true")
    ap.add_argument("--skip-fixtures", action="store_true")
    args = ap.parse_args(argv)

    import trafilatura

    print(f"python {sys.version.split()[0]}   trafilatura {trafilatura.__version__}")
    result: dict[str, Any] = {
        "python": sys.version.split()[0],
        "trafilatura": trafilatura.__version__,
    }
    if args.speed:
        print("== parse speed: parse_article vs bare trafilatura.extract ==")
        result["speed"] = compare_speed(args.speed_ref, args.speed_rounds, args.fixtures)
        print_speed_report(result["speed"])
        if args.json:
            args.json.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
        return 0
    fixtures_ok = None if args.skip_fixtures else run_fixtures(args.fixtures, result)
    print("")
    aeb_ok = None
    if not args.skip_aeb:
        aeb_dir = args.aeb_dir or default_aeb_dir()
        aeb_ok = run_aeb(aeb_dir, result, args.limit, args.variants, args.generic, args.diagnose)
    if args.json:
        args.json.write_text(
            json.dumps(result, ensure_ascii=False, indent=1, default=str), encoding="utf-8"
        )
        print(f"\nwrote {args.json}")
    failed = (fixtures_ok is not True and not args.skip_fixtures) or aeb_ok is False
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
