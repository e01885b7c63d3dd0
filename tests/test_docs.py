"""The docs cannot drift from the code: docs/options.md's reference is what the option table
generates, docs/saved.md's key table is what ``EXTRA_INFO`` generates and what a real run saves, and
every link between the pages leads somewhere."""

import json
import re
from pathlib import Path

import pytest

from pytest_llmperf import read_results
from pytest_llmperf.measure.results import extra_info_keys
from pytest_llmperf.output import reference as output_reference
from pytest_llmperf.settings import reference
from pytest_llmperf.settings.options import OPTIONS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_option_reference_is_what_the_option_table_generates():
    page = (ROOT / "docs" / "options.md").read_text(encoding="utf-8")
    assert reference.generated_block(page, reference.COMMAND) == reference.render_options(), (
        "docs/options.md is stale: run python -m pytest_llmperf.output.reference")
    for option in OPTIONS:  # every option, with its ini key
        assert f"| `{option.flag}" in page and f"`{option.ini}" in page


def test_the_saved_keys_are_what_the_extra_info_table_generates():
    page = (ROOT / "docs" / "saved.md").read_text(encoding="utf-8")
    assert reference.generated_block(page, output_reference.COMMAND) == output_reference.render_extra_info(), (
        "docs/saved.md is stale: run python -m pytest_llmperf.output.reference")


def test_the_generator_rewrites_a_stale_page_and_check_says_so(tmp_path, capsys):
    page = tmp_path / "options.md"
    page.write_text(f"# Options\n\nprose\n\n{reference.begin(reference.COMMAND)}\n| old |\n{reference.END}\n\nmore prose\n")
    pages = ((page, reference.render_options, reference.COMMAND),)
    assert reference.main(["--check"], pages) == 1
    assert "| old |" in page.read_text()
    assert "the generated block differs" in capsys.readouterr().err
    assert reference.main([], pages) == 0
    text = page.read_text()
    assert text.startswith("# Options\n\nprose\n\n") and text.endswith(f"{reference.END}\n\nmore prose\n")
    assert "| old |" not in text and "--llmperf-batch-sizes" in text
    assert reference.main(["--check"], pages) == 0


SUITE = '''
def test_timed(llmperf):
    llmperf.benchmark("manual", 1)


def test_untimed(llmperf):
    llmperf.generate("manual", 2)
'''


def test_a_real_run_saves_exactly_the_documented_keys(run_suite, pytester):
    result = run_suite("--benchmark-json=run.json", suite=SUITE)
    result.assert_outcomes(passed=2)
    documented = extra_info_keys()
    (timed,) = json.loads((pytester.path / "run.json").read_text())["benchmarks"]
    assert set(timed["extra_info"]) == documented
    _, cases = read_results(pytester.path / ".llmperf" / "results.jsonl")
    untimed = [case for case in cases if not case["timed"]]
    assert len(untimed) == 1 and set(untimed[0]["extra_info"]) == documented


def anchors(text: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown page (code blocks left out)."""
    found, fenced = set(), False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.lstrip("#").strip())  # a link: its text
            found.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_link_between_the_pages_leads_somewhere(page):
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and anchor not in anchors(linked.read_text(encoding="utf-8"))):
            broken.append(target)
    assert broken == []
