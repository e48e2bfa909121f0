"""The extraction benchmark harness: metric, fixture scoring, AEB sample (fast)."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bench import extraction as bx
from bench.extraction import PRF, token_prf

AEB_DIR = bx.default_aeb_dir()
FIXTURES = bx.DEFAULT_FIXTURES


def approx(prf: PRF) -> tuple[float, float, float]:
    return (prf.precision, prf.recall, prf.f1)


# --------------------------------------------------------------------------- metric


def test_identical_text_scores_one() -> None:
    text = "Sau một ngày tranh tài sôi nổi, cờ tướng Việt Nam đã thành công."
    assert token_prf(text, text) == PRF(1.0, 1.0, 1.0)


def test_disjoint_text_scores_zero() -> None:
    assert token_prf("alpha beta gamma", "delta epsilon") == PRF(0.0, 0.0, 0.0)
    assert token_prf("alpha beta", "") == PRF(0.0, 0.0, 0.0)
    assert token_prf("", "alpha beta") == PRF(0.0, 0.0, 0.0)


def test_both_empty_scores_one() -> None:
    assert token_prf("", None) == PRF(1.0, 1.0, 1.0)


def test_case_punctuation_and_unicode_form_do_not_count() -> None:
    assert token_prf("Hello, World!", "hello world").f1 == 1.0
    nfc = "Hà Nội khánh thành cầu"
    import unicodedata

    assert token_prf(nfc, unicodedata.normalize("NFD", nfc)).f1 == 1.0
    # punctuation splits words: "AT&T" -> "at", "t"
    assert bx.tokenize("AT&T's (new) plan") == ["at", "t", "s", "new", "plan"]


def test_partial_overlap_values() -> None:
    # half the truth predicted, nothing extra: P 1, R 1/2, F1 2/3
    assert approx(token_prf("a b c d", "a b")) == pytest.approx((1.0, 0.5, 2 / 3))
    # everything predicted plus as much noise: P 1/2, R 1, F1 2/3
    assert approx(token_prf("a b", "a b x y")) == pytest.approx((0.5, 1.0, 2 / 3))
    # multisets: truth a,a,b  pred a,b,b -> 2 hits of 3 each way
    assert approx(token_prf("a a b", "a b b")) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    # 3 of 4 true tokens, 3 of 5 predicted: P .6, R .75, F1 2/3
    assert approx(token_prf("w x y z", "w x y q r")) == pytest.approx((0.6, 0.75, 2 / 3))


def test_shingles_and_upstream_f1() -> None:
    # 4-gram shingles: truth (abcd, bcde), pred (abcd) -> P 1, R 1/2
    assert approx(token_prf("a b c d e", "a b c d", ngram=4)) == pytest.approx((1.0, 0.5, 2 / 3))
    # shorter than n: the whole text is one shingle
    assert token_prf("a b", "a b", ngram=4).f1 == 1.0
    # upstream headline: F1 of the mean P and mean R
    assert bx.upstream_f1([PRF(1.0, 0.5, 0.0), PRF(0.5, 1.0, 0.0)]) == pytest.approx(0.75)


def test_metric_agrees_with_project_token_f1() -> None:
    from baotintuc import text

    pairs = [
        ("Tin, ảnh: Minh Anh - Ngọc Thành (TTXVN)", "minh anh ngọc thành"),
        ("a a b c", "a b b"),
        ("Khởi tố 14 đối tượng&nbsp;cướp tài sản", "khởi tố 14 đối tượng cướp"),
        ("", ""),
    ]
    for truth, pred in pairs:
        assert token_prf(truth, pred).f1 == pytest.approx(text.token_f1(pred, truth))


def test_format_table_aligns_numbers_right() -> None:
    out = bx.format_table(["name", "F1"], [("a", 0.5), ("long name", 1.0)])
    lines = out.splitlines()
    assert lines[0].startswith("name")
    assert lines[2].endswith("0.5000") and lines[3].endswith("1.0000")
    assert len({len(x) for x in lines[1:]}) == 1


# --------------------------------------------------------------------------- fixtures


def _fake_fixture_dir(tmp_path: Path) -> Path:
    expected = {
        "page_a": {
            "url": "https://example.vn/a-20250101000000001.htm",
            "layout": "X",
            "expected": {
                "title": "Tiêu đề",
                "tags": ["a", "b"],
                "published_at": "2025-01-01T08:00:00+07:00",
                "images": [{"position": 0, "url": "u", "caption": "", "credit": None}],
                "body_text": "một hai ba bốn",
                "body_markdown": "ignored",
            },
        },
        "page_b": {
            "url": "https://example.vn/b-20250101000000002.htm",
            "layout": "X",
            "expected": {"title": "B", "tags": [], "body_text": "x y"},
        },
    }
    (tmp_path / "expected.json").write_text(json.dumps(expected), encoding="utf-8")
    for name in expected:
        (tmp_path / f"{name}.html.gz").write_bytes(gzip.compress(f"<p>{name}</p>".encode()))
    return tmp_path


def test_fixture_scoring_on_fake_parser(tmp_path: Path) -> None:
    from baotintuc.model import ImageRecord

    cases = bx.load_fixtures(_fake_fixture_dir(tmp_path))
    assert [c.name for c in cases] == ["page_a", "page_b"]
    assert cases[0].html == b"<p>page_a</p>"

    class Fake:
        def __init__(self, **kw: Any) -> None:
            self.__dict__.update(kw)

    tz = timezone(timedelta(hours=7))

    def parse(html: bytes, url: str) -> Any:
        if b"page_b" in html:
            raise ValueError("boom")
        return Fake(
            title="Tiêu đề",
            tags=["a", "b"],
            published_at=datetime(2025, 1, 1, 8, 0, tzinfo=tz),
            images=[ImageRecord(0, "u", "", None)],
            body_text="một hai ba",
        )

    rep = bx.evaluate_fixtures(cases, parse, passes=1)
    assert rep.pages == 2
    assert set(rep.parse_errors) == {"page_b"}
    assert rep.fields["title"].matched == 1 and rep.fields["title"].total == 2
    assert rep.fields["published_at"].rate == 1.0  # datetime compared as ISO string
    assert rep.fields["images"].rate == 1.0  # dataclasses compared as dicts
    assert "body_markdown" not in rep.fields
    assert rep.body_f1["page_a"] == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert rep.body_f1["page_b"] == 0.0
    assert rep.body_f1_worst == ("page_b", 0.0)
    assert rep.pages_per_second is not None and rep.pages_per_second > 0
    targets = {name: ok for name, ok, _ in rep.targets()}
    assert targets["published_at exact = 100%"] is True
    assert targets["title exact = 100%"] is False


def test_fixture_harness_on_real_fixtures() -> None:
    from baotintuc import parsers, text

    cases = bx.load_fixtures(FIXTURES)
    assert cases
    rep = bx.evaluate_fixtures(cases, parsers.parse_article, passes=1, project_f1=text.token_f1)
    assert rep.pages == len(cases)
    assert all(0.0 <= f <= 1.0 for f in rep.body_f1.values())
    assert all(0.0 <= fs.rate <= 1.0 and fs.total <= len(cases) for fs in rep.fields.values())
    assert rep.pages_per_second is not None and rep.pages_per_second > 0
    assert rep.cross_check_max_diff is not None and rep.cross_check_max_diff < 1e-9


# --------------------------------------------------------------------------- AEB sample


@pytest.fixture(scope="module")
def aeb_sample() -> list[bx.AebPage]:
    return bx.load_aeb(AEB_DIR, limit=5)


def test_aeb_plain_vs_generic_sample(aeb_sample: list[bx.AebPage]) -> None:
    name, generic = bx.resolve_generic()
    runs = bx.evaluate_extractors(aeb_sample, {"plain": bx.aeb_trafilatura, name: generic})
    for run in runs.values():
        assert len(run.prf) == 5
        for prf in run.prf.values():
            assert 0.0 <= prf.precision <= 1.0 and 0.0 <= prf.recall <= 1.0
            assert 0.0 <= prf.f1 <= 1.0
        assert all(ms > 0 for ms in run.ms.values())
    plain, gen = runs["plain"].mean("f1"), runs[name].mean("f1")
    assert plain > 0.8  # trafilatura scores ~0.95 on the full set
    assert gen >= plain - 0.02, f"generic {gen:.4f} < plain {plain:.4f} - 0.02"


def test_aeb_data_ships_with_the_repository() -> None:
    truth = json.loads((AEB_DIR / "ground-truth.json").read_text(encoding="utf-8"))
    pages = sorted(p.name.removesuffix(".html.gz") for p in (AEB_DIR / "html").glob("*.gz"))
    assert len(truth) == 181 and pages == sorted(truth)
    assert "MIT" in (AEB_DIR / "LICENSE").read_text(encoding="utf-8")
    assert AEB_DIR.resolve().is_relative_to(bx.REPO_ROOT.resolve())


def test_cli_fails_on_missing_aeb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = bx.main(["--skip-fixtures", "--aeb-dir", str(tmp_path / "none"), "--check"])
    assert rc == 1
    assert "FAIL: AEB data not found" in capsys.readouterr().out


def test_cli_json_on_two_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.json"
    rc = bx.main(["--skip-fixtures", "--limit", "2", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["aeb"]["pages"] == 2
    names = set(data["aeb"]["extractors"])
    generic = "generic: baotintuc.parsers.generic.generic_body"
    assert names == {bx.AEB_SETTINGS, bx.AEB_PRECISION, bx.LIBRARY_DEFAULTS, generic}
    targets = {t["target"] for t in data["aeb"]["targets"]}
    assert f"AEB generic F1 >= {bx.AEB_F1_TARGET}" in targets
    printed = capsys.readouterr().out
    assert f"delta {generic} - {bx.AEB_SETTINGS}" in printed
    assert f"delta {generic} - {bx.AEB_PRECISION}" in printed


def test_aeb_settings_are_the_upstream_call(aeb_sample: list[bx.AebPage]) -> None:
    import trafilatura

    page = aeb_sample[0]
    text = page.html.decode("utf-8")
    assert bx.aeb_trafilatura(page.html, page.url) == trafilatura.extract(
        text, include_comments=False
    )
    assert bx.aeb_trafilatura_precision(page.html, page.url) == trafilatura.extract(
        text, include_comments=False, favor_precision=True
    )


def test_aeb_targets_judge_f1_and_time() -> None:
    def run(name: str, f1: float, ms: float) -> bx.ExtractorRun:
        r = bx.ExtractorRun(name)
        r.prf = {"p": PRF(f1, f1, f1)}
        r.ms = {"p": ms}
        return r

    runs = {bx.AEB_SETTINGS: run(bx.AEB_SETTINGS, 0.96, 10.0),
            bx.AEB_PRECISION: run(bx.AEB_PRECISION, 0.965, 10.0),
            "g": run("g", 0.976, 12.5)}
    verdict = {name: ok for name, ok, _ in bx.aeb_targets(runs, "g")}
    assert verdict[f"AEB generic F1 >= {bx.AEB_F1_TARGET}"] is True
    assert verdict[f"AEB generic F1 > {bx.AEB_PRECISION}"] is True
    assert verdict[f"AEB generic time <= {bx.AEB_TIME_TARGET} x {bx.AEB_SETTINGS}"] is False


def test_diagnose_ablations_switch_steps_off(aeb_sample: list[bx.AebPage]) -> None:
    from baotintuc.parsers.generic import generic_body

    ablations = bx.diagnose_extractors()
    assert set(ablations) == {"generic without split-body join",
                              "generic without recall escalation", "generic without both"}
    page = aeb_sample[0]
    both = ablations["generic without both"](page.html, page.url)
    assert both == generic_body(page.html, page.url, join_split=False, escalate=False)


def test_speed_comparison_interleaves_workers() -> None:
    rep = bx.compare_speed(None, rounds=1)
    ms = rep["ms_per_page"]
    assert set(ms) == {"parse_article (this checkout)", "trafilatura.extract(html) (bare)"}
    assert rep["pages"] == 21
    assert all(len(v) == 1 and v[0] > 0 for v in rep["pass_seconds"].values())
