"""Other models and data: local files, custom columns, tokenizers without chat template or pad
token; bad input fails with one line while the rest of the session carries on."""

import json
import shutil

import pytest

from pytest_llmperf.model import builtin

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
    result.stdout.fnmatch_lines([f"*dataset {path}:test, 4 samples*"])


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


@pytest.mark.parametrize("option, message", [
    ("--llmperf-model=no-such-org/no-such-model", "cannot load model 'no-such-org/no-such-model': *"),
    ("--llmperf-model=./no-such-model-dir", "cannot load model './no-such-model-dir': no such model directory"),
    ("--llmperf-dataset=no-such-org/no-such-dataset", "cannot load dataset 'no-such-org/no-such-dataset': *"),
    ("--llmperf-split=validation", "dataset 'builtin' has no split 'validation' (splits: train, test: *seed 42)"),
])
def test_unknown_model_dataset_or_split_fails_with_one_line(run_suite, option, message):
    result = run_suite(option, *STRATEGY)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([f"*{message}*"])
    result.stdout.no_fnmatch_line("*Traceback*")


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


def test_more_samples_than_the_split_has_runs_them_all_and_says_so(run_suite, pytester, prompts_rows):
    path = pytester.path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in prompts_rows))  # 60 rows: a 12-row test split
    result = run_suite(f"--llmperf-dataset={path}", "--llmperf-num-samples=50", *STRATEGY)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*--llmperf-num-samples 50, but dataset * split 'test' has 12 rows; running all 12*"])
    result.stdout.fnmatch_lines([f"*dataset {path}:test, 12 samples*"])


def test_attention_a_model_does_not_implement_is_skipped_with_the_reason(run_suite, pytester):
    """Gemma2 has no sdpa attention: those tests skip with transformers' reason, eager runs."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    model_dir = pytester.path / "tiny-gemma2"
    shutil.copytree(builtin.MODEL_DIR, model_dir)
    config = Gemma2Config(vocab_size=1024, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                          bos_token_id=1, eos_token_id=2, pad_token_id=0)
    Gemma2ForCausalLM(config).save_pretrained(model_dir)  # random weights; only loading is under test
    suite = '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size, check_outputs=False)
'''
    result = run_suite(f"--llmperf-model={model_dir}", "--llmperf-attn=sdpa,eager", *STRATEGY, "-rs", suite=suite)
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED*with attn_implementation=sdpa: Gemma2ForCausalLM does not support an "
                                 "attention implementation through torch.nn.functional.scaled_dot_product_attention yet"])
