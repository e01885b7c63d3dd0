"""Architecture-shaped models (``--llmperf-model shape:NAME``) and the fixed-shape workload
(``--llmperf-dataset synthetic``): real sizes with random weights, offline, and prompts of exactly N
tokens generating exactly ``max_new_tokens``. The shipped shapes run on the CPU here: the smallest
one end to end at 2 prompts x 4 tokens, the next one built and counted."""

import json

import pytest

from pytest_llmperf import journal, shapes

SYNTHETIC = ("--llmperf-dataset=synthetic", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1")


@pytest.fixture(scope="module", autouse=True)
def shared_tokenizer_cache(tmp_path_factory):
    """The extended tokenizers are cached per vocab size; one cache for this module's runs, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


def llama_parameters(c: dict) -> int:
    """A Llama's parameter count from its config: tied embedding, attention, SwiGLU MLP, two norms a layer."""
    head = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    h, layers = c["hidden_size"], c["num_hidden_layers"]
    attention = h * head * (2 * c["num_attention_heads"] + 2 * c["num_key_value_heads"])
    per_layer = attention + 3 * h * c["intermediate_size"] + 2 * h
    embeddings = c["vocab_size"] * h * (1 if c.get("tie_word_embeddings") else 2)
    return embeddings + layers * per_layer + h


def gemma3_parameters(c: dict) -> int:
    """Gemma 3: as a Llama, plus two more norms a layer and the q/k norms, embeddings tied."""
    h, head = c["hidden_size"], c["head_dim"]
    attention = h * head * (2 * c["num_attention_heads"] + 2 * c["num_key_value_heads"])
    per_layer = attention + 3 * h * c["intermediate_size"] + 4 * h + 2 * head
    return c["vocab_size"] * h + c["num_hidden_layers"] * per_layer + h


SIZES = '''
def test_sizes(llmperf):
    model, tokenizer = llmperf.target.model, llmperf.target.tokenizer
    print("PARAMETERS", sum(p.numel() for p in model.parameters()))
    assert len(tokenizer) == model.config.vocab_size == model.get_input_embeddings().num_embeddings == {vocab}
    assert model.get_output_embeddings().weight.shape[0] == {vocab}
'''


def shipped(name: str) -> dict:
    return json.loads((shapes.config_file(f"shape:{name}")).read_text())


def test_smollm2_has_its_published_size_and_runs_with_random_weights_named_in_the_title(run_suite):
    config = shipped("smollm2-135m")
    assert llama_parameters(config) == 134_515_008  # "135M" on the model card
    suite = SIZES.format(vocab=49_152) + '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''
    result = run_suite("--llmperf-model=shape:smollm2-135m", *SYNTHETIC, "--llmperf-prompt-tokens=4",
                       "--llmperf-num-samples=2", "--llmperf-max-new-tokens=4", "-s", suite=suite)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*PARAMETERS 134515008"])
    result.stdout.fnmatch_lines([
        "llmperf: shape:smollm2-135m (random weights, built in * s) * | dataset "
        "synthetic: 2 prompts x 4 tokens, exactly 4 new tokens each (EOS ignored) | *",
        "| batch size | strategy | length match | avg similarity to bs=1 | avg similarity to reference |*",
        "*| 1 * | manual * | 2/2 * | 1.000 * | n/a (random weights)*"])


def test_gemma3_has_its_published_size(run_suite):
    config = shipped("gemma-3-270m")
    assert gemma3_parameters(config) == 268_098_176  # "268M" on the model card
    result = run_suite("--llmperf-model=shape:gemma-3-270m", "-s", suite=SIZES.format(vocab=262_144))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*PARAMETERS 268098176"])


TINY = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 2048, "max_position_embeddings": 512,
        "tie_word_embeddings": False}


def test_a_users_config_builds_and_runs_the_text_workload(run_suite, pytester):
    """Any config.json: its sizes, the built-in dataset tokenized by the extended tokenizer, and an
    identity that carries the config's digest and the seed."""
    (pytester.path / "tiny").mkdir()
    (pytester.path / "tiny" / "config.json").write_text(json.dumps(TINY))
    suite = SIZES.format(vocab=2048) + '''
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''
    result = run_suite("--llmperf-model=shape:tiny/config.json", "--llmperf-strategies=manual",
                       "--llmperf-batch-sizes=1,2", "--llmperf-num-samples=4", "--llmperf-max-new-tokens=4", "-s",
                       suite=suite)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"*PARAMETERS {llama_parameters(TINY)}"])
    result.stdout.fnmatch_lines(["llmperf: shape:tiny/config.json (random weights, built in * s) * | dataset "
                                 "builtin:test, 4 samples, max_new_tokens 4 | *",
                                 "*| 2 * | manual * | n/a (random weights)*"])
    _, cases = journal.read(pytester.path / ".llmperf" / "results.jsonl")
    identity = cases[0]["extra_info"]["identity"]
    assert identity["shape"] == f"shape:seed={shapes.SEED}:config={shapes.digest(TINY)}"
    assert cases[0]["extra_info"]["similarity_to_reference"] is None


@pytest.mark.parametrize("model, config, message", [
    ("shape:bad.json", {**TINY, "hidden_act": "nope"}, "config key 'hidden_act': unknown value 'nope'"),
    ("shape:bad.json", {**TINY, "vocab_size": "big"}, "Validation error for field 'vocab_size': *"),
    ("shape:bad.json", {"hidden_size": 64}, "config key 'model_type' is missing: *"),
    ("shape:nosuch", None, "no shape 'nosuch': not a shipped one (gemma-3-270m, llama-3.2-1b, qwen2.5-0.5b, "
                           "smollm2-135m) and no such config file"),
])
def test_a_config_transformers_cannot_build_is_a_one_line_error_naming_the_key(run_suite, pytester, model, config,
                                                                              message):
    if config is not None:
        (pytester.path / "bad.json").write_text(json.dumps(config))
    result = run_suite(f"--llmperf-model={model}", "--llmperf-strategies=manual", "--llmperf-batch-sizes=1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*cannot load model '{model}': {message}"])
    result.stdout.no_fnmatch_line("*Traceback*")


EXACT = '''
def test_prompts(llmperf):
    workload, tokenizer = llmperf.workload, llmperf.target.tokenizer
    assert [len(ids) for ids in workload.input_ids] == [16] * 4
    batch = tokenizer(list(workload.texts), padding=True, add_special_tokens=False)["input_ids"]
    assert batch == [list(ids) for ids in workload.input_ids]  # what each strategy tokenizes: no padding

def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''


def test_synthetic_prompts_have_exactly_n_tokens_and_every_strategy_generates_exactly_max_new_tokens(
        run_suite, pytester):
    """The built-in model is trained to end its answers: it emits EOS inside these outputs, and every
    strategy runs on past it."""
    result = run_suite("--llmperf-dataset=synthetic", "--llmperf-prompt-tokens=16", "--llmperf-num-samples=4",
                       "--llmperf-max-new-tokens=8", "--llmperf-batch-sizes=2", "--llmperf-latency=off",
                       "--llmperf-strategies=manual,pipeline,keydataset,continuous,continuous_serving", suite=EXACT)
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["llmperf: builtin * | dataset synthetic: 4 prompts x 16 tokens, exactly 8 new "
                                 "tokens each (EOS ignored) | *"])
    _, cases = journal.read(pytester.path / ".llmperf" / "results.jsonl")
    assert {case["extra_info"]["strategy"] for case in cases} == {"manual", "pipeline", "keydataset", "continuous",
                                                                  "continuous_serving"}
    for case in cases:
        assert [len(ids) for ids in case["output_ids"]] == [8] * 4, case["extra_info"]["strategy"]
        assert case["extra_info"]["identity"]["prompt_tokens"] == 16
    eos = 2  # the built-in tokenizer's <|end|>
    assert any(eos in ids[:-1] for case in cases for ids in case["output_ids"])


def test_the_identity_changes_with_the_prompt_length(run_suite, pytester):
    identities = {}
    for tokens in (8, 12):
        run_suite(*SYNTHETIC, f"--llmperf-prompt-tokens={tokens}", "--llmperf-num-samples=2",
                  "--llmperf-max-new-tokens=2", "--benchmark-disable").assert_outcomes(passed=1)
        _, cases = journal.read(pytester.path / ".llmperf" / "results.jsonl")
        identities[tokens] = cases[-1]["extra_info"]["identity"]
    assert identities[8]["prompt_tokens"] == 8 and identities[12]["prompt_tokens"] == 12
    assert identities[8]["prompts"] != identities[12]["prompts"]
    run_suite("--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--llmperf-num-samples=2",
              "--llmperf-max-new-tokens=2", "--benchmark-disable").assert_outcomes(passed=1)
    _, cases = journal.read(pytester.path / ".llmperf" / "results.jsonl")
    assert {"prompt_tokens", "shape"}.isdisjoint(cases[-1]["extra_info"]["identity"])  # other cases: as before


@pytest.mark.parametrize("args, message", [
    (("--llmperf-prompt-tokens=16",), "--llmperf-prompt-tokens: applies only to --llmperf-dataset synthetic (the "
                                      "prompts of dataset 'builtin' are its own)"),
    (("--llmperf-dataset=synthetic", "--llmperf-num-samples=all"),
     "--llmperf-num-samples: 'all' has no meaning for --llmperf-dataset synthetic; give a number of prompts"),
])
def test_synthetic_options_that_do_not_fit_are_a_usage_error(run_suite, args, message):
    result = run_suite(*args)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*{message}*"])
