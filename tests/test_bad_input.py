"""What bad or unusual input gets: a skip with its reason or a one-line error, never a number that was
not measured. (Issue 9 collects the rest of this table.)"""

import json

WRONG_COUNT_CONFTEST = '''
from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy

CALLS = []


@register_strategy("dropsone")
class DropsOne(ManualStrategy):
    """A user's strategy with a bug: it loses the last prompt's output."""

    def generate(self, ctx):
        CALLS.append(1)
        generations = super().generate(ctx)
        return ctx.finish([sample.token_ids for sample in generations.samples[:-1]])
'''


def test_a_batch_size_larger_than_the_workload_is_skipped_never_reported(run_suite, pytester):
    result = run_suite("-rs", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1,1000",
                       "--benchmark-json=bench.json")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*batch size 1000 is larger than the workload (4 prompts): it would run as one "
                                 "batch of 4; raise --llmperf-num-samples or drop this batch size"])
    assert "| 1000 " not in result.stdout.str()  # no table row for what did not run
    sizes = [b["extra_info"]["batch_size"] for b in json.loads((pytester.path / "bench.json").read_text())["benchmarks"]]
    assert sizes == [1]


def test_a_strategy_that_returns_the_wrong_count_fails_in_one_line_after_its_first_round(run_suite):
    suite = '''
import conftest

def test_throughput(llmperf):
    try:
        llmperf.benchmark("dropsone", 2)
    finally:
        print("CALLS", len(conftest.CALLS))
'''
    result = run_suite("-s", "--llmperf-warmup=1", "--llmperf-rounds=3", suite=suite, conftest=WRONG_COUNT_CONFTEST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*CALLS 1", "*strategy 'dropsone' returned 3 outputs for 4 prompts (batch size 2)"])
    assert "Traceback" not in result.stdout.str() and "RuntimeError" not in result.stdout.str()


def test_help_states_each_default_once(pytester):
    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())
    assert "dataset column holding reference outputs [default: the built-in set's own, else none; ini:" in text
    assert "[default: torch's own, one per core; ini: llmperf_threads]" in text


def test_empty_reference_cells_are_missing_not_the_text_none(run_suite, pytester):
    rows = [{"text": f"A bowl of soup number {i}.", "ref": "food: soup" if i % 2 else None} for i in range(40)]
    data = pytester.path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = run_suite(f"--llmperf-dataset={data}", "--llmperf-prompt-column=text", "--llmperf-reference-column=ref",
                       "--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--benchmark-json=bench.json",
                       "--llmperf-num-samples=8", "-W", "default")
    result.assert_outcomes(passed=1)
    info = json.loads((pytester.path / "bench.json").read_text())["benchmarks"][0]["extra_info"]
    assert info["num_samples"] == 8 and 0 < info["references_missing"] < 8
    result.stdout.fnmatch_lines([f"*llmperf: {info['references_missing']} of 8 rows have no reference in column 'ref'; "
                                 "the reference scores leave them out*"])


def test_all_empty_prompts_are_an_error_and_some_a_warning(run_suite, pytester):
    empty = pytester.path / "empty.jsonl"
    empty.write_text("".join(json.dumps({"text": "  "}) + "\n" for _ in range(20)))
    result = run_suite(f"--llmperf-dataset={empty}", "--llmperf-prompt-column=text", "--llmperf-strategies=manual",
                       "--llmperf-batch-sizes=1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*split 'test': every prompt in column 'text' is empty (4 rows)"])
    some = pytester.path / "some.jsonl"
    some.write_text("".join(json.dumps({"text": "" if i < 10 else f"Tea number {i}."}) + "\n" for i in range(20)))
    result = run_suite(f"--llmperf-dataset={some}", "--llmperf-prompt-column=text", "--llmperf-strategies=manual",
                       "--llmperf-batch-sizes=1", "-W", "default")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*llmperf: * of 4 prompts in column 'text' are empty; they are generated for like "
                                 "the others*"])


def model_dir(pytester, name: str, model) -> str:
    """``model`` saved with the built-in tokenizer beside it: a local model directory as users have them."""
    import shutil

    from pytest_llmperf.model import builtin

    path = pytester.path / name
    model.save_pretrained(path)
    for file in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(builtin.MODEL_DIR / file, path / file)
    return str(path)


def one_line_failure(result, line: str) -> None:
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([line])
    assert "Traceback" not in result.stdout.str()


def test_an_encoder_only_model_is_a_one_line_load_error(run_suite, pytester):
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=1024, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256)
    path = model_dir(pytester, "bert", BertForMaskedLM(config))
    result = run_suite(f"--llmperf-model={path}", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1")
    one_line_failure(result, f"*cannot load model '{path}': not a causal LM: BertForMaskedLM checkpoint of "
                             "encoder-only model type 'bert' (is_decoder=False), which AutoModelForCausalLM loads "
                             "as BertLMHeadModel")


def test_a_checkpoint_without_its_lm_head_is_a_one_line_load_error(run_suite, pytester):
    from transformers import LlamaConfig, LlamaModel

    config = LlamaConfig(vocab_size=1024, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=2, intermediate_size=64, max_position_embeddings=256,
                         tie_word_embeddings=False)
    path = model_dir(pytester, "headless", LlamaModel(config))
    result = run_suite(f"--llmperf-model={path}", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1")
    one_line_failure(result, f"*cannot load model '{path}': 1 weight(s) newly initialised on load, missing from the "
                             "LlamaModel checkpoint (lm_head.weight): not a trained causal LM")


def test_a_model_directory_without_config_json_says_so(run_suite, pytester):
    (pytester.path / "weights_only").mkdir()
    (pytester.path / "weights_only" / "model.safetensors").write_bytes(b"")
    result = run_suite("--llmperf-model=./weights_only", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1")
    one_line_failure(result, "*cannot load model './weights_only': no config.json in ./weights_only")


def test_an_empty_jsonl_dataset_says_the_file_is_empty(run_suite, pytester):
    (pytester.path / "empty.jsonl").write_text("\n")
    result = run_suite("--llmperf-dataset=empty.jsonl", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1")
    one_line_failure(result, "*dataset file 'empty.jsonl' is empty")


def test_prompts_beyond_the_context_are_an_error_and_a_generation_budget_beyond_it_a_warning(run_suite, pytester):
    """The built-in model's context is 256 tokens (max_position_embeddings)."""
    rows = pytester.path / "long.jsonl"
    rows.write_text("".join(json.dumps({"text": ("A very long menu. " * 200 if i == 3 else f"Soup number {i}.")})
                            + "\n" for i in range(20)))
    result = run_suite(f"--llmperf-dataset={rows}", "--llmperf-prompt-column=text", "--llmperf-strategies=manual",
                       "--llmperf-batch-sizes=1", "--llmperf-split=train", "--llmperf-num-samples=8")
    one_line_failure(result, "*1 of 8 prompts are longer than the model's context of 256 tokens (longest * tokens); "
                             "shorten them or use another model")
    result = run_suite("--llmperf-max-new-tokens=5000", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1",
                       "--llmperf-num-samples=2", "-W", "default", "--benchmark-disable")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*llmperf: 2 of 2 prompts plus --llmperf-max-new-tokens 5000 exceed the model's "
                                 "context of 256 tokens (longest prompt * tokens); generations that run that long go "
                                 "past it*"])


RAISING_CONFTEST = '''
from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy


@register_strategy("buggy")
class Buggy(ManualStrategy):
    def generate(self, ctx):
        outputs = super().generate(ctx)
        return self.postprocess(outputs)

    def postprocess(self, outputs):
        return outputs.samples[99]  # the user's bug
'''


def test_a_custom_strategy_that_raises_shows_its_traceback_from_the_users_frames(run_suite):
    result = run_suite("--llmperf-strategies=buggy", "--llmperf-batch-sizes=1", conftest=RAISING_CONFTEST)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        ">       llmperf.benchmark(strategy, batch_size)",
        "test_perf.py:2: ",
        "*",
        "conftest.py:9: in generate",
        "    return self.postprocess(outputs)",
        "*",
        ">       return outputs.samples[[]99]  # the user's bug",
        "E       IndexError: tuple index out of range",
        "conftest.py:12: IndexError",
    ])
    harness = [line for line in result.stdout.lines if "pytest_llmperf/" in line or "pytest_benchmark/" in line]
    assert harness == []


def test_a_gpt_neox_model_is_a_causal_lm_though_its_config_says_is_decoder_false(run_suite, pytester):
    """Pythia and GPT-NeoX keep is_decoder=False in their config: only encoder families (those with a
    masked-LM head) are refused for it."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    config = GPTNeoXConfig(vocab_size=1024, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=256)
    assert config.is_decoder is False
    path = model_dir(pytester, "neox", GPTNeoXForCausalLM(config))
    result = run_suite(f"--llmperf-model={path}", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1")
    result.assert_outcomes(passed=1)


def test_a_truncated_weights_file_is_named_and_said_to_be_truncated_or_corrupt(run_suite, pytester):
    import shutil

    from pytest_llmperf.model import builtin

    shutil.copytree(builtin.MODEL_DIR, pytester.path / "broken")
    weights = pytester.path / "broken" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a download cut short
    result = run_suite("--llmperf-model=./broken", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1")
    one_line_failure(result, "cannot load model './broken': weights file ./broken/model.safetensors is truncated or "
                             "corrupt (safetensors: incomplete metadata, file not fully covered)")
