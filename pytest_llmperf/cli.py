"""``pytest-llmperf``: the report and the exports again, from a saved run, without a model or a GPU.

    pytest-llmperf report results.json --out report/
    pytest-llmperf export results.json github-action-benchmark=bench/ bencher=bencher.json
    pytest-llmperf push-to-hub results.json my-org/perf-results
    pytest-llmperf merge a10g.json l4.json cpu.json --out merged.json
    pytest-llmperf report merged.json --out report/ --price A10G=1.01,L4=0.80
    pytest-llmperf report hub:my-org/perf-results --out history/

A saved run is pytest-benchmark's JSON (``--benchmark-json`` or an autosaved run under
``.benchmarks/``, or a merge of several) or the results file (``.llmperf/results.jsonl``). A history
is the rows of a Hub dataset: ``hub:ORG/NAME``, or a folder of its files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .output import exports, history, hub, machines, report_folder, saved
from .output.merge import merge
from .output.writers import HUB_ROWS
from .settings.config import Thresholds
from .settings.options import (
    METRIC_NAMES,
    OPTIONS_BY_DEST,
    parse_exports,
    parse_repo_id,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pytest-llmperf", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="write the report folder (tables, figures, data) from a saved run, "
                                                "or the history of a Hub dataset's rows")
    report.add_argument("run", help="a --benchmark-json file, an autosaved run, a merged run, or "
                                    ".llmperf/results.jsonl; or hub:ORG/NAME or a folder of its rows: the history")
    report.add_argument("--out", required=True, help="the folder to write")
    report.add_argument("--price", type=_option("price"), metavar="NAME=USD",
                        help=OPTIONS_BY_DEST["price"].help + " (as --llmperf-price)")
    report.add_argument("--machine", help="a merged run: report this machine's cases only (its name, or part of it)")
    report.add_argument("--metric", choices=METRIC_NAMES, default="tokens_per_s",
                        help="a history: the metric drawn and judged (default: tokens_per_s)")
    report.add_argument("--tolerance", type=_option("tolerance"), metavar="TOLERANCE",
                        help="a history: as --llmperf-tolerance (default: each metric's)")
    report.add_argument("--alpha", type=_option("alpha"), default=_option("alpha")(OPTIONS_BY_DEST["alpha"].default),
                        metavar="P", help="a history: as --llmperf-alpha (default: %(default)s)")
    merged = commands.add_parser("merge", help="join saved runs from several machines or shards into one")
    merged.add_argument("runs", nargs="+", metavar="RUN", help="--benchmark-json or autosaved files (or merged ones)")
    merged.add_argument("--out", required=True, help="the merged file to write (pytest-benchmark JSON)")
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
        if args.command == "merge":
            return _merge(args.runs, args.out)
        if args.command == "report" and history.is_history(args.run):
            return _history(args)
        targets = [pair for item in args.exports for pair in parse_exports(item) or _no_export(item)] \
            if args.command == "export" else []
        run = saved.load(args.run)
        if args.command == "report":
            run = machines.only(run, args.machine) if args.machine else run
            written, note = report_folder.write(run, args.out, args.price)
        else:
            written = [(fmt, exports.write(fmt, run.records, path)) for fmt, path in targets]
    except (ValueError, saved.SavedRunError, hub.HubError, history.HistoryError) as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
    if args.command == "report":
        on = f" on {len(run.machines)} machines" if len(run.machines) > 1 else ""
        print(f"pytest-llmperf: report of {len(run.records)} cases{on} in {args.out}: {len(written)} files")
        if note:
            print(f"pytest-llmperf: {note}")
        return 0
    for fmt, files in written:
        print(f"pytest-llmperf: {fmt}: {', '.join(map(str, files)) or 'nothing to export, no case was timed'}")
    return 0


def _option(dest: str):
    """argparse's ``type`` for a value parsed as the option ``dest`` of the option table parses it."""
    option = OPTIONS_BY_DEST[dest]

    def parse(value: str):
        try:
            return option.parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = dest  # argparse names the type in its message
    return parse


def _merge(runs: list[str], out: str) -> int:
    done = merge(runs, out)
    print(f"pytest-llmperf: merged {done.runs} run{'s' * (done.runs != 1)} ({done.cases} cases on "
          f"{len(done.machines)} machine{'s' * (len(done.machines) != 1)}) into {done.path}")
    for machine in done.machines:
        print(f"  {machine}")
    if done.repeated:
        print("pytest-llmperf: left out, already merged from an earlier file for the same machine: "
              + ", ".join(f"{count} in {source}" for source, count in done.repeated.items()))
    return 0


def _history(args) -> int:
    written, note, counts = history.write(args.run, args.out, args.metric, Thresholds(tolerance=args.tolerance),
                                          args.alpha)
    print(f"pytest-llmperf: history of {counts['rows']} rows ({counts['cases']} cases, {counts['commits']} commits, "
          f"{counts['machines']} machines) in {args.out}: {len(written)} files; {counts['regressions']} "
          f"regression{'s' * (counts['regressions'] != 1)} flagged ({args.metric})")
    if note:
        print(f"pytest-llmperf: {note}")
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
