"""The ``extra_info`` key table of docs/saved.md, generated from ``measure.results.EXTRA_INFO``, the
table kept where the keys are produced; tests/test_docs.py checks a real run's keys against it.

``python -m pytest_llmperf.output.reference`` rewrites the generated blocks of every generated page
(docs/saved.md here, docs/options.md through ``settings.reference``); ``--check`` rewrites nothing
and exits 1 when one differs. The plugin never imports it.
"""

from __future__ import annotations

import sys

from ..measure.results import EXTRA_INFO
from ..settings import reference
from ..settings.reference import DOCS, cell


def render_extra_info() -> str:
    """A table per subject of ``EXTRA_INFO``, a row per key (a family as one row)."""
    sections = []
    for subject, keys in EXTRA_INFO:
        rows = [f"| `{key}` | {cell(meaning)} |" for key, meaning in keys.items()]
        sections.append("\n".join([f"### {subject}", "", "| key | meaning |", "|---|---|", *rows]))
    return "\n\n".join(sections)


COMMAND = "pytest_llmperf.output.reference"
PAGES = (*reference.PAGES, (DOCS / "saved.md", render_extra_info, COMMAND))

if __name__ == "__main__":
    sys.exit(reference.main(sys.argv[1:], PAGES))
