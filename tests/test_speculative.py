"""Speculative decoding (``--llmperf-speculative``): a draft model or the prompt's n-grams propose
tokens, the main model verifies them. Greedy, it must give the non-speculative outputs exactly: a
gate, on by default. Each case reports the acceptance rate and its speedup over the same case
without speculative decoding; what transformers cannot run speculatively is skipped with the reason."""

import json

PLANTED = '''
import copy

import torch

from pytest_llmperf import register_strategy
from pytest_llmperf.strategies.manual import ManualStrategy


@register_strategy("speculative_sampling")
class SpeculativeSampling(ManualStrategy):
    """Speculative decoding with the draft, but sampling (transformers' speculative sampling): each
    output is drawn, not the main model's greedy choice."""

    def setup(self, ctx):
        ctx.generation_config = copy.deepcopy(ctx.generation_config)
        ctx.generation_config.update(do_sample=True, temperature=1.0)

    def generate(self, ctx):
        torch.manual_seed(0)
        return super().generate(ctx)
'''

CUSTOM = '''
from pytest_llmperf import Strategy, register_strategy


class OneByOne(Strategy):
    """generate, one prompt at a time, with the generation config only."""

    def generate(self, ctx):
        generated = []
        for text in ctx.workload.texts:
            inputs = ctx.tokenizer([text], add_special_tokens=ctx.workload.add_special_tokens, return_tensors="pt")
            sequences = ctx.model.generate(**inputs.to(ctx.target.device), generation_config=ctx.generation_config)
            generated.append(sequences[0, inputs["input_ids"].shape[1]:].tolist())
        return ctx.finish(generated)


@register_strategy("undeclared")
class Undeclared(OneByOne):
    pass


@register_strategy("forgetful")
class Forgetful(OneByOne):
    speculative = True  # claimed, but the draft in ctx.generate_kwargs never reaches generate
'''


def test_assisted_and_prompt_lookup_reproduce_the_greedy_outputs(run_suite, pytester):
    """The built-in model's draft and prompt lookup, beside the same case without them: each passes the
    exact-match gate, and reports what its draft proposed and kept, and its speedup."""
    result = run_suite("--llmperf-speculative=none,assisted,prompt-lookup", "--llmperf-strategies=manual",
                       "--llmperf-batch-sizes=1", "--llmperf-num-samples=4", "--benchmark-json=out.json", "-rA")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([
        "PASSED *::test_throughput[[]sdpa-nocompile-float32-manual-bs1[]]",  # ``none`` keeps the ids it had
        "PASSED *::test_throughput[[]sdpa-nocompile-float32-assisted-manual-bs1[]]",
        "PASSED *::test_throughput[[]sdpa-nocompile-float32-prompt-lookup-manual-bs1[]]",
    ])
    result.stdout.fnmatch_lines(["*exact match of greedy assisted decoding to the non-speculative bs=1: 1 >= "
                                 "required 1 (4/4 samples identical)*"])
    result.stdout.fnmatch_lines([
        "llmperf: builtin [[]sdpa-nocompile-float32-assisted[]] on * | speculative decoding: assisted, draft "
        "builtin | *",
        "| batch size | strategy | * | speedup vs bs=1 | acceptance * | tokens/forward | speedup vs non-speculative |*",
        "|*",
        "| 1 * | manual * | 4/4 * | 1.000 * | 1.00x * | 0.* (*/*) | * | *x *",
        "speculative decoding: length match and similarity are against the non-speculative bs=1 outputs;*",
    ])
    cases = {bench["extra_info"]["speculative"]: bench["extra_info"]
             for bench in json.loads((pytester.path / "out.json").read_text())["benchmarks"]}
    assert cases["none"]["acceptance_rate"] is None and cases["none"]["speedup_vs_non_speculative"] is None
    for mode in ("assisted", "prompt-lookup"):
        info = cases[mode]
        assert info["exact_match_to_bs1"] == 1.0 and info["speedup_vs_non_speculative"] > 0
        assert info["identity"]["speculative"] == mode
        proposed, accepted = info["draft_tokens_proposed"], info["draft_tokens_accepted"]
        assert 0 <= accepted <= proposed and info["acceptance_rate"] == accepted / proposed
        # Each forward pass of the main model appends the candidates it kept and one token of its own,
        # except that a kept EOS ends the generation (4 of them at most): the counts fit the outputs.
        forwards = round(info["generated_tokens"] / info["tokens_per_forward"])
        assert forwards + accepted - 4 <= info["generated_tokens"] <= forwards + accepted
    assert cases["assisted"]["draft_model"] == "builtin"
    assert cases["assisted"]["acceptance_rate"] > 0.5  # the built-in draft makes assisted decoding a fair test
    assert cases["prompt-lookup"]["speculative_config"]["prompt_lookup_num_tokens"] == 10


def test_a_speculative_strategy_that_changes_the_outputs_fails_the_gate(run_suite):
    """Speculative sampling with the same draft is real speculative decoding that does not keep the
    greedy outputs: the gate fails it, and shows where the outputs part. Set through the marker, the
    other output gates off, so that this gate alone judges it."""
    suite = '''
import pytest


@pytest.mark.llmperf(speculative=["assisted"], strategies=["manual", "speculative_sampling"], batch_sizes=[1])
def test_throughput(llmperf, strategy, batch_size):
    llmperf.benchmark(strategy, batch_size)
'''
    result = run_suite("--llmperf-min-exact-match=off", "--llmperf-min-similarity=off", "--llmperf-num-samples=2",
                       suite=suite, conftest=PLANTED)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*llmperf gate failed: speculative_sampling bs=1 [[]sdpa-nocompile-float32-assisted[]]*",
        "*exact match of greedy assisted decoding to the non-speculative bs=1: * < required 1 (*/2 samples "
        "identical)*",
        "*differing samples (bs=1 speculative_sampling assisted vs the non-speculative bs=1 baseline; *",
        "*- sample *: similarity *, * at generated token *",
    ])
    result.stdout.fnmatch_lines(["FAILED*test_throughput?sdpa-nocompile-float32-assisted-speculative_sampling-bs1?*"])


def test_what_cannot_run_speculatively_is_skipped_with_the_reason(run_suite, pytester):
    """Set in the ini file: batch sizes above 1, continuous batching and a strategy that does not
    declare it are skipped, each with one line; one that declares it and does not pass the draft on fails."""
    pytester.makeini("[pytest]\nllmperf_speculative = assisted\n")
    result = run_suite("--llmperf-strategies=manual,continuous,undeclared,forgetful", "--llmperf-batch-sizes=1,2",
                       "--llmperf-num-samples=2", "--llmperf-max-new-tokens=4", "-rfs", conftest=CUSTOM)
    result.assert_outcomes(passed=1, skipped=6, failed=1)
    result.stdout.fnmatch_lines_random([
        "SKIPPED [[]2[]] *: speculative decoding (assisted) runs at batch size 1 only: transformers' assisted "
        "generation (draft model or prompt lookup) takes one sequence per generate call",
        "SKIPPED [[]2[]] *: speculative decoding (assisted) does not run with strategy continuous: transformers' "
        "continuous batching has no speculative decoding (generate_batch takes no draft)",
        "SKIPPED [[]2[]] *: speculative decoding (assisted) does not run with strategy undeclared: it does not "
        "declare speculative = True, which says it passes ctx.generation_config and ctx.generate_kwargs to generate",
        "strategy 'forgetful' declares speculative = True but ran without speculative decoding (assisted): it must "
        "pass ctx.generation_config and ctx.generate_kwargs to every generate call",
        "FAILED *forgetful-bs1*",
    ])


def test_a_random_weight_draft_keeps_the_outputs_and_its_acceptance_is_not_reported(run_suite, pytester):
    """A ``shape:`` draft (here a one-layer Llama from a config file) proposes noise: the model still
    keeps the greedy outputs, and the table says the acceptance rate means nothing."""
    pytester.makefile(".json", draft=json.dumps({
        "model_type": "llama", "vocab_size": 1024, "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
        "max_position_embeddings": 256, "tie_word_embeddings": True}))
    result = run_suite("--llmperf-speculative=assisted", "--llmperf-draft-model=shape:draft.json",
                       "--llmperf-strategies=manual", "--llmperf-batch-sizes=1", "--llmperf-num-samples=2",
                       "--llmperf-max-new-tokens=8", "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "*speculative decoding: assisted, draft shape:draft.json | *",
        "| 1 * | manual * | 2/2 * | 1.000 * | n/a (random weights) | * |",
        "*acceptance n/a: the draft has random weights (shape:): its acceptance rate says nothing of a trained "
        "one's",
    ])
    info = json.loads((pytester.path / "out.json").read_text())["benchmarks"][0]["extra_info"]
    assert info["acceptance_rate_note"] and info["draft_tokens_proposed"] > 0 and info["exact_match_to_bs1"] == 1.0
    assert info["causes"]["draft_revision"].startswith("shape:")


def test_assisted_decoding_without_a_draft_is_a_usage_error(run_suite):
    result = run_suite("--llmperf-model=some-org/some-model", "--llmperf-speculative=none,assisted")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--llmperf-speculative assisted needs --llmperf-draft-model (a hub id, a local "
                                 "model directory or shape:NAME): the built-in draft goes with --llmperf-model "
                                 "builtin only"])
