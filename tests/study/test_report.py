"""The report renders from a study directory built from real runs, says only what analysis.json says."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from tests._helpers.study_results import copy_study
from typer.testing import CliRunner

from fusebench.cli import app
from fusebench.io import read_json
from fusebench.study.report import headline_table, render_report
from fusebench.study.report_text import cell, num, pvalue, seconds


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    study_dir = copy_study("pretrain", tmp_path_factory.mktemp("report"))
    render_report(study_dir)
    return study_dir


def digest(folder: Path) -> dict[str, str]:
    files = [
        "analysis.json",
        "report.html",
        "report.md",
        *sorted(f"figures/{p.name}" for p in (folder / "figures").glob("*.png")),
    ]
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in files}


def test_html_embeds_every_figure_as_base64(rendered: Path) -> None:
    html = (rendered / "report.html").read_text()
    figures = sorted((rendered / "figures").glob("*.png"))
    assert len(figures) >= 7
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(figures) and all(len(i) > 1000 for i in images)
    assert "<script" not in html and 'src="figures/' not in html  # self-contained


def test_headline_numbers_come_from_analysis_json(rendered: Path) -> None:
    html = (rendered / "report.html").read_text()
    analysis = read_json(rendered / "analysis.json")
    for group in analysis["groups"]:
        for pattern in analysis["patterns"]:
            summary = group["test"][pattern]["accuracy"]
            test_set = group["test_set"][pattern]
            assert cell(summary, test_set=test_set) in html
            assert f"(n={summary['n']}; test set ±{num(test_set['half_width'])})" in cell(summary, test_set=test_set)
    primary = analysis["comparisons"][analysis["primary_comparison"]]
    assert f"p = {pvalue(primary['p_ttest'])}" in html
    assert f"Holm-adjusted p = {pvalue(primary['p_holm'])}" in html
    assert f"n = {primary['n']} paired seeds" in html
    assert num(primary["mean_diff"]).lstrip("-") in html


@pytest.mark.parametrize(
    ("p", "text"),
    [
        (0.0625, "0.0625"),
        (0.7, "0.700"),
        (1.0, "1.00"),
        (0.04567, "0.0457"),
        (0.001, "0.00100"),
        (0.00041, "4.10e-04"),
        (None, "–"),
    ],
)
def test_p_values_have_three_significant_digits(p: float | None, text: str) -> None:
    assert pvalue(p) == text


@pytest.mark.parametrize(("value", "text"), [(14.8, "14.80 s"), (3.14159, "3.14 s"), (125.456, "125.46 s")])
def test_times_have_two_decimals(value: float, text: str) -> None:
    assert seconds(value) == text


def test_report_separates_primary_secondary_and_described_comparisons(rendered: Path) -> None:
    analysis = read_json(rendered / "analysis.json")
    for name in ("report.html", "report.md"):
        text = (rendered / name).read_text()
        for heading in (
            "Primary comparisons",
            "Secondary comparisons",
            "Time (described, not tested)",
            "Decision guide: did pre-training pay for itself?",
        ):
            assert heading in text, (name, heading)
        assert f"family of {analysis['families']['primary']} test" in text
        assert "95% intervals: paired t-interval (the interval of the paired t-test)." in text
        assert "test set ±" in text and "Wilson binomial interval" in text
        assert "seeds for 80% power" in text and "--workers 1" in text
        assert "pre-training (data + fit)" in text and "shared among this study's arms" in text
        assert text.rstrip().endswith(
            "</html>" if name.endswith("html") else "The timing caveats of the Wall time section apply."
        )
    verdict_text = (rendered / "report.md").read_text().split("## Verdict")[1].split("## Learning curves")[0]
    assert "Primary family (1 test with a defined p-value" in verdict_text
    assert "Total time (1 comparison) is described, not tested" in verdict_text
    assert "bootstrap CI" not in verdict_text and "amortised" not in (rendered / "report.md").read_text()


def test_verdict_follows_the_holm_p_value(rendered: Path) -> None:
    analysis = read_json(rendered / "analysis.json")
    primary = analysis["comparisons"][analysis["primary_comparison"]]
    html = (rendered / "report.html").read_text()
    significant = primary["p_holm"] is not None and primary["p_holm"] < 0.05
    assert ("is significant at α = 0.05 after Holm" in html) == significant
    assert ("is not significant at α = 0.05 after Holm" in html) == (not significant)


def test_failed_runs_section_lists_errors(rendered: Path) -> None:
    html = (rendered / "report.html").read_text()
    section = html[html.index("Failed, skipped or unfinished runs") :]
    assert "2 of 15 runs did not complete" in section
    assert "frozen-s1" in section and "FileNotFoundError" in section and "frozen-s2" in section


def test_markdown_links_figures_that_exist(rendered: Path) -> None:
    markdown = (rendered / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(links) == len(list((rendered / "figures").glob("*.png")))
    assert all((rendered / link).is_file() and link.startswith("figures/") for link in links)
    assert "| scratch |" in markdown and "base64" not in markdown


def test_axes_study_report_has_fusion_and_missing_rate_sections(tmp_path: Path) -> None:
    study_dir = copy_study("axes", tmp_path)
    html_path, md_path = render_report(study_dir)
    html, markdown = html_path.read_text(), md_path.read_text()
    for text in (html, markdown):
        assert "Fusion methods" in text and "Train-time vs test-time missing rate" in text
    assert "late|<wbr>fusion=gated|<wbr>missing_rate=0.4" in html
    assert r"late\|fusion=gated\|missing_rate=0.4" in markdown
    assert len(list((study_dir / "figures").glob("ptrain_ptest_*.png"))) == 4
    assert "All 8 runs completed." in html


def test_headline_table_for_the_terminal(rendered: Path) -> None:
    table = headline_table(rendered)
    assert table.splitlines()[0].startswith("pretrain_vs_scratch: test accuracy")
    assert "| group | audio+image | audio | image |" in table
    assert "| frozen |" in table and "(n=1; test set ±" in table and "2 run(s) failed or were skipped" in table


def test_cli_report_rerenders_the_same_bytes_and_names_a_missing_study(rendered: Path, tmp_path: Path) -> None:
    before = digest(rendered)
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(rendered)])
    assert result.exit_code == 0, result.output
    assert "report.html" in result.output and "| scratch |" in result.output
    assert digest(rendered) == before  # deterministic: same results.json, byte-identical report and figures
    missing = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert "results.json" in missing.output and "does not exist" in missing.output
