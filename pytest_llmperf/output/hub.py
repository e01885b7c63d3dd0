"""Results appended to a Hugging Face Hub dataset, as transformers' benchmark_v2 keeps its runs, so
they can be tracked across commits and machines (``--llmperf-push-to-hub ORG/NAME``).

Each run adds one JSON Lines file, ``runs/<date>/<run id>.jsonl``, one row per case: the run id,
a timestamp, the case's pytest id, the commit (pytest-benchmark's ``commit_info``), the environment
fingerprint (``machine_info["llmperf"]``: hardware and software), the machine's name
(``environment.machine_name``) and every ``extra_info`` field (a merged run's rows each carry the
commit and fingerprint of the run that measured them),
which include the identity and cause digests; nested values are JSON strings, so every file has
the same flat columns. Appending files, never rewriting one, keeps
concurrent CI jobs from overwriting each other; ``datasets.load_dataset("ORG/NAME")`` reads them
all as one table.

Nothing is uploaded without the option, and a missing token is an error at start-up, not a silent
skip. The rows are written locally first (``.llmperf/hub/<run id>.jsonl``), so a failed upload loses
nothing and can be retried with ``pytest-llmperf push-to-hub``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

from .saved import Run, case_name, latest


class HubError(Exception):
    """One line: why the rows could not be uploaded."""


def require_token() -> str:
    """The token huggingface_hub would use (``HF_TOKEN``, or a ``hf auth login``), or a ``HubError``."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise HubError("--llmperf-push-to-hub needs a Hugging Face token with write access: set HF_TOKEN "
                       "(or run `hf auth login`)")
    return token


def rows(run: Run, run_id: str, timestamp: str) -> list[dict]:
    """One row per case. Every nested value (the commit, the environment, identity, causes, per-round
    lists...) is a JSON string, so every file of every run has the same flat, scalar columns and the
    dataset loads as one table whatever each run measured."""
    return [{key: json.dumps(value) if isinstance(value, (dict, list)) else value for key, value in {
        "run_id": run_id, "timestamp": timestamp, "case": case_name(record), "test": record["test"],
        "commit": run.part_of(record).commit_info or None, "environment": run.part_of(record).environment or None,
        "machine": record["machine"], **record["extra_info"]}.items()}
        for record in latest(run.records)]


def write_rows(run: Run, folder: Path) -> Path:
    """The run's rows as a local JSON Lines file, named by a new run id."""
    now = datetime.now(timezone.utc)
    run_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for row in rows(run, run_id, now.isoformat(timespec="seconds")):
            handle.write(json.dumps(row) + "\n")
    return path


def is_rows_file(path: Path) -> bool:
    """Whether ``path`` holds rows ``write_rows`` wrote (a retry uploads it as it is)."""
    try:
        with path.open(encoding="utf-8") as handle:
            return "run_id" in json.loads(handle.readline() or "{}")
    except (OSError, ValueError):
        return False


def upload(path: Path, repo_id: str) -> str:
    """Append the rows file to the dataset repo ``repo_id``; the commit URL. Raises ``HubError``."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    token = require_token()
    with path.open(encoding="utf-8") as handle:
        first = json.loads(handle.readline())
        rows_count = 1 + sum(1 for _ in handle)
    in_repo = f"runs/{first['timestamp'][:10]}/{first['run_id']}.jsonl"
    try:
        commit = HfApi(token=token).create_commit(
            repo_id, operations=[CommitOperationAdd(in_repo, str(path))], repo_type="dataset",
            commit_message=f"pytest-llmperf: {rows_count} cases ({first['run_id']})")
    except HfHubHTTPError as exc:
        raise HubError(f"upload to {repo_id} failed: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # offline mode, no connection...
        raise HubError(f"upload to {repo_id} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                       ) from None
    return commit.commit_url
