"""Rows appended to a Hugging Face Hub dataset (``--llmperf-push-to-hub``), tested against a local HTTP
endpoint (``HF_ENDPOINT``) that answers as the Hub's upload API does and records what it receives.
The real Hub cannot be reached here: the upload to huggingface.co itself has not been exercised."""

import base64
import contextlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SUITE = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''
HARNESS_REGISTRY = "/api/agent-harnesses"
RUN = ("-p", "no:cacheprovider", "-p", "no:randomly", "--llmperf-num-samples=8", "--llmperf-max-new-tokens=8",
       "--llmperf-warmup=0", "--llmperf-rounds=1", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1,2")


class HubRecorder(BaseHTTPRequestHandler):
    """The two calls of a commit of a small file: preupload (regular, not LFS), then the commit; with
    ``server.refuse`` set, a write refused (403, a token without write access: not retried)."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append((self.command, self.path, self.headers.get("Authorization"), body))
        if self.server.refuse:
            return self.send_error(403, "You don't have the rights to write to this repository")
        if "/preupload/" in self.path:
            answer = {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                for f in json.loads(body)["files"]]}
        elif "/commit/" in self.path:
            answer = {"commitUrl": f"{self.server.url}/datasets/org/perf/commit/abc123", "commitOid": "abc123",
                      "pullRequestUrl": None}
        else:
            return self.send_error(404)
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.server.received.append((self.command, self.path, self.headers.get("Authorization"), b""))
        self.send_error(404)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def recording_hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubRecorder)
    server.received, server.url = [], f"http://127.0.0.1:{server.server_address[1]}"
    server.refuse = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
def hub_endpoint():
    with recording_hub() as server:
        yield server


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """A timed session that pushed its rows to the recording endpoint: (folder, stdout, requests, url)."""
    folder = tmp_path_factory.mktemp("pushed")
    (folder / "test_perf.py").write_text(SUITE)
    with recording_hub() as hub:
        result = run([*RUN, "--llmperf-push-to-hub=org/perf", "--benchmark-json=bench.json"], folder, hub.url)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return folder, result.stdout, hub.received, hub.url


def run(args, cwd, endpoint, token="hf_test_token", command=(sys.executable, "-m", "pytest")):
    env = {key: value for key, value in os.environ.items() if key != "HF_TOKEN"}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="0", HF_HOME=str(cwd / "hf-home"))
    if token:
        env["HF_TOKEN"] = token
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def committed_rows(body: bytes) -> tuple[str, list[dict]]:
    """The path and rows of the one file in a commit's NDJSON payload."""
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert lines[0]["key"] == "header"
    (file,) = [line["value"] for line in lines if line["key"] == "file"]
    content = base64.b64decode(file["content"]).decode()
    return file["path"], [json.loads(row) for row in content.splitlines()]


def test_a_session_appends_its_rows_to_the_dataset(pushed):
    from conftest import resolved_auto_device

    folder, stdout, received, url = pushed
    device = resolved_auto_device()
    # the two calls of an upload, and nothing else of the session reached the Hub (huggingface_hub's
    # client fetches its agent-harness registry on its own, best effort)
    calls = [(method, path) for method, path, _, _ in received if path != HARNESS_REGISTRY]
    assert calls == [("POST", "/api/datasets/org/perf/preupload/main"), ("POST", "/api/datasets/org/perf/commit/main")]
    posts = [request for request in received if request[0] == "POST"]
    assert all(auth == "Bearer hf_test_token" for _, _, auth, _ in posts)
    path, rows = committed_rows(posts[1][3])
    (local,) = (folder / ".llmperf" / "hub").glob("*.jsonl")
    assert path == f"runs/{rows[0]['timestamp'][:10]}/{rows[0]['run_id']}.jsonl" and local.stem == rows[0]["run_id"]
    assert rows == [json.loads(line) for line in local.read_text().splitlines()]
    saved = {bench["fullname"]: bench["extra_info"] for bench in json.loads((folder / "bench.json").read_text())["benchmarks"]}
    assert {row["case"] for row in rows} == set(saved) and len({row["run_id"] for row in rows}) == 1
    for row in rows:  # every extra_info field; nested ones as JSON strings
        decoded = {key: json.loads(row[key]) if isinstance(saved[row["case"]][key], (dict, list)) else row[key]
                   for key in saved[row["case"]]}
        assert decoded == saved[row["case"]]
        assert row["timestamp"] and "commit" in row and json.loads(row["identity"])["strategy"] == "manual"
        # the fingerprint names the device the case ran on (`--llmperf-device auto`: a GPU where there is one)
        assert row["device"] == device and json.loads(row["environment"])["hardware"]["device_type"] == \
            device.split(":")[0]
    assert f"llmperf: pushed 2 cases to the Hub dataset org/perf: {url}/datasets/org/perf/commit/abc123" in stdout


def test_without_a_token_nothing_runs_and_the_error_says_what_to_set(tmp_path, hub_endpoint):
    (tmp_path / "test_perf.py").write_text(SUITE)
    result = run([*RUN, "--llmperf-push-to-hub=org/perf"], tmp_path, hub_endpoint.url, token=None)
    assert result.returncode == 4
    assert "--llmperf-push-to-hub needs a Hugging Face token with write access: set HF_TOKEN" in result.stderr
    assert [path for _, path, _, _ in hub_endpoint.received if path != HARNESS_REGISTRY] == []


def test_a_failed_upload_keeps_the_rows_and_says_how_to_retry(tmp_path, hub_endpoint):
    """A write the Hub refuses (an unreachable Hub fails the same way, after huggingface_hub's ~25 s of
    retries)."""
    (tmp_path / "test_perf.py").write_text(SUITE)
    hub_endpoint.refuse = True
    result = run([*RUN, "--llmperf-push-to-hub=org/perf", "--benchmark-disable"], tmp_path, hub_endpoint.url)
    hub_endpoint.refuse = False
    assert result.returncode == 1, result.stdout[-3000:]  # the tests passed, but the upload asked for did not happen
    (kept,) = (tmp_path / ".llmperf" / "hub").glob("*.jsonl")
    line = next(line for line in result.stdout.splitlines() if "upload to org/perf failed" in line)
    assert line.endswith(f"the rows are kept in {kept}: retry with `pytest-llmperf push-to-hub {kept} org/perf`")
    script = str(Path(sys.executable).with_name("pytest-llmperf"))
    retry = run(["push-to-hub", str(kept), "org/perf"], tmp_path, hub_endpoint.url, command=(script,))
    assert retry.returncode == 0, retry.stderr
    _, rows = committed_rows([r for r in hub_endpoint.received if r[0] == "POST"][-1][3])
    assert rows == [json.loads(row) for row in kept.read_text().splitlines()]


def test_the_files_of_different_runs_load_as_one_dataset(pushed, tmp_path, hub_endpoint):
    """A timed run and an untimed one (whose timing, memory and latency fields are all null) read
    together, as ``datasets.load_dataset`` reads the dataset repo's files."""
    import datasets

    (tmp_path / "test_perf.py").write_text(SUITE)
    run([*RUN, "--llmperf-push-to-hub=org/perf", "--benchmark-disable"], tmp_path, hub_endpoint.url)
    (timed,) = (pushed[0] / ".llmperf" / "hub").glob("*.jsonl")
    (untimed,) = (tmp_path / ".llmperf" / "hub").glob("*.jsonl")
    table = datasets.load_dataset("json", data_files=[str(timed), str(untimed)], split="train",
                                  cache_dir=str(tmp_path / "cache"))
    assert table.num_rows == 4 and len(set(table["run_id"])) == 2
    assert sorted(value is None for value in table["tokens_per_s"]) == [False, False, True, True]


def test_a_bad_dataset_id_is_a_usage_error(pytester):
    result = pytester.runpytest("--llmperf-push-to-hub=not a repo")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--llmperf-push-to-hub: invalid dataset id 'not a repo'; expected ORG/NAME*"])
