"""Other models and data: local files, custom columns, tokenizers without chat template or pad
token; bad input fails with one line while the rest of the session carries on."""

import json
import shutil

import pytest

from pytest_llmperf import builtin

STRATEGY = ("--llmperf-strategies=manual", "--llmperf-batch-sizes=1,4")


@pytest.fixture
def prompts_rows():
    with open(builtin.DATASET_FILE) as lines:
        return [json.loads(line) for line in lines][:60]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_local_files_with_custom_columns(run_suite, pytester, prompts_rows, suffix):
    import datasets

    path = pytester.path / f"rows{suffix}"
    table = datasets.Dataset.from_list([{"question": r["sequence"], "answer": r["label_condensed"]}
                                        for r in prompts_rows])
    {".jsonl": table.to_json, ".csv": table.to_csv, ".parquet": table.to_parquet}[suffix](str(path))
    result = run_suite(f"--llmperf-dataset={path}", "--llmperf-prompt-column=question",
                       "--llmperf-reference-column=answer", *STRATEGY)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*dataset {path}:test, 8 samples*"])


def test_missing_column_fails_with_one_line_naming_the_columns(run_suite, pytester):
    suite = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)

def test_unrelated():
    pass
'''
    result = run_suite("--llmperf-prompt-column=question", *STRATEGY, suite=suite)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*dataset 'builtin' has no prompt column 'question' (columns: sequence, label_condensed);"
        " set --llmperf-prompt-column*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_unknown_model_and_dataset_fail_with_one_line(run_suite):
    result = run_suite("--llmperf-model=no-such-org/no-such-model", *STRATEGY)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*cannot load model 'no-such-org/no-such-model': *"])
    result = run_suite("--llmperf-dataset=no-such-org/no-such-dataset", *STRATEGY)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*cannot load dataset 'no-such-org/no-such-dataset': *"])


def test_model_without_chat_template_or_pad_token(run_suite, pytester):
    """Raw prompts are used; padding falls back to EOS on the left, and batching still agrees."""
    model_dir = pytester.path / "plain-model"
    shutil.copytree(builtin.MODEL_DIR, model_dir)
    (model_dir / "chat_template.jinja").unlink(missing_ok=True)
    config_path = model_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    for key in ("chat_template", "pad_token"):
        config.pop(key, None)
    config_path.write_text(json.dumps(config))
    suite = '''
def test_inputs(llmperf):
    assert llmperf.target.tokenizer.chat_template is None
    assert llmperf.target.tokenizer.pad_token == llmperf.target.tokenizer.eos_token
    assert llmperf.workload.texts == llmperf.workload.prompts

def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size, check_outputs=False)
'''
    result = run_suite(f"--llmperf-model={model_dir}", *STRATEGY, suite=suite)
    result.assert_outcomes(passed=3)
