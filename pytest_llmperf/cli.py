"""``pytest-llmperf``: the report and the exports again, from a saved run, without a model or a GPU.

    pytest-llmperf report results.json --out report/
    pytest-llmperf export results.json github-action-benchmark=bench/ bencher=bencher.json
    pytest-llmperf push-to-hub results.json my-org/perf-results

A saved run is pytest-benchmark's JSON (``--benchmark-json`` or an autosaved run under
``.benchmarks/``) or the results file (``.llmperf/results.jsonl``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .output import exports, hub, report_folder, saved
from .output.writers import HUB_ROWS
from .settings.options import parse_exports, parse_repo_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pytest-llmperf", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="write the report folder (tables, figures, data) from a saved run")
    report.add_argument("run", help="a --benchmark-json file, an autosaved run, or .llmperf/results.jsonl")
    report.add_argument("--out", required=True, help="the folder to write")
    export = commands.add_parser("export", help="write dashboard formats from a saved run")
    export.add_argument("run", help="a --benchmark-json file, an autosaved run, or .llmperf/results.jsonl")
    export.add_argument("exports", nargs="+", metavar="FORMAT=PATH",
                        help=f"FORMAT: {', '.join(exports.FORMATS)}")
    push = commands.add_parser("push-to-hub", help="append a saved run's rows to a Hugging Face Hub dataset")
    push.add_argument("run", help="a saved run, or the rows of a push that failed (.llmperf/hub/*.jsonl)")
    push.add_argument("repo", help="the dataset, ORG/NAME")
    args = parser.parse_args(argv)
    try:
        if args.command == "push-to-hub":
            return _push(args.run, args.repo)
        targets = [pair for item in args.exports for pair in parse_exports(item) or _no_export(item)] \
            if args.command == "export" else []
        run = saved.load(args.run)
        if args.command == "report":
            written, note = report_folder.write(run, args.out)
        else:
            written = [(fmt, exports.write(fmt, run.records, path)) for fmt, path in targets]
    except (ValueError, saved.SavedRunError, hub.HubError) as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
    if args.command == "report":
        print(f"pytest-llmperf: report of {len(run.records)} cases in {args.out}: {len(written)} files")
        if note:
            print(f"pytest-llmperf: {note}")
        return 0
    for fmt, files in written:
        print(f"pytest-llmperf: {fmt}: {', '.join(map(str, files)) or 'nothing to export, no case was timed'}")
    return 0


def _error(message: str) -> int:
    print(f"pytest-llmperf: error: {message}", file=sys.stderr)
    return 2


def _no_export(item: str):
    raise ValueError(f"invalid export {item!r}; expected FORMAT=PATH")


def _push(run: str, repo: str) -> int:
    repo = parse_repo_id(repo)
    hub.require_token()
    path = Path(run)
    if not hub.is_rows_file(path):
        path = hub.write_rows(saved.load(run), HUB_ROWS)
    url = hub.upload(path, repo)
    print(f"pytest-llmperf: pushed {path} to {repo}: {url}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
