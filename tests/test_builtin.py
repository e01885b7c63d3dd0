"""The embedded offline workload: a reproducible dataset and a tiny model that loads like a hub
model, really extracts the food items, and gives the same greedy outputs batched and unbatched."""

import json

import pytest

from pytest_llmperf.measure.compare import compare
from pytest_llmperf.model import builtin
from pytest_llmperf.model.loading import load
from pytest_llmperf.model.workload import format_workload, load_rows, load_split
from pytest_llmperf.recipes import dataset
from pytest_llmperf.recipes.verify import TEST_SPLIT
from pytest_llmperf.run.runner import generate_once
from pytest_llmperf.settings.config import ModelSpec
from pytest_llmperf.settings.options import BUILTIN

# Test-split rows (by index) that the shipped model extracts exactly: "none", food-only,
# drink-only, two-item and food+drink rows. Re-pick them if the model is ever retrained.
EXACT_ROWS = [2, 3, 5, 7, 8, 14, 15]


@pytest.fixture(scope="module")
def target():
    return load(ModelSpec(BUILTIN, "cpu", "float32", "sdpa", "none"))


def test_generator_reproduces_shipped_file():
    assert dataset.to_jsonl(dataset.generate()) == builtin.DATASET_FILE.read_bytes()


def test_dataset_rows():
    rows = [json.loads(line) for line in builtin.DATASET_FILE.read_text("utf-8").splitlines()]
    assert len(rows) == 1000
    for row in rows:
        assert list(row) == [builtin.PROMPT_COLUMN, builtin.REFERENCE_COLUMN]
        assert row[builtin.PROMPT_COLUMN].strip() and row[builtin.REFERENCE_COLUMN].strip()
    assert 0.1 < sum(r[builtin.REFERENCE_COLUMN] == "none" for r in rows) / len(rows) < 0.3


def test_split_is_80_20_with_seed_42():
    from datasets import load_dataset

    train, test = load_split(BUILTIN, "train"), load_split(BUILTIN, "test")
    assert (len(train), len(test)) == (800, 200)
    expected = load_dataset("json", data_files=str(builtin.DATASET_FILE), split="train").train_test_split(
        test_size=0.2, seed=42)
    assert test["sequence"] == expected["test"]["sequence"] and train["sequence"] == expected["train"]["sequence"]


def test_model_and_tokenizer_load_like_a_hub_model(target):
    import torch
    from transformers import PreTrainedTokenizerFast

    model, tokenizer = target.model, target.tokenizer
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    assert sum(p.numel() for p in model.parameters()) < 10_000_000
    assert model.dtype == torch.float32
    assert tokenizer.chat_template and tokenizer.padding_side == "left"
    assert tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "A bowl of soup."}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.startswith(tokenizer.bos_token) and prompt.endswith("<|assistant|>\n")


def test_model_extracts_the_reference_and_is_batch_invariant(target):
    workload = format_workload(TEST_SPLIT, load_rows(TEST_SPLIT), target.tokenizer)
    first16 = format_workload(TEST_SPLIT, type(workload.rows)(workload.prompts[:16], workload.references[:16],
                                                              workload.rows.reference_column), target.tokenizer)
    single = generate_once(target, first16, "manual", 1)
    texts = [sample.text.strip() for sample in single.samples]
    assert [texts[i] for i in EXACT_ROWS] == [first16.references[i] for i in EXACT_ROWS]
    assert compare(generate_once(target, first16, "manual", 8), single).exact_match == 1.0


def test_the_draft_has_the_models_tokenizer_and_a_fraction_of_its_size(target):
    """The draft of speculative decoding (recipes/train.py --draft): the main model's tokenizer files
    byte for byte, and under a fifth of its parameters."""
    from transformers import AutoModelForCausalLM

    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (builtin.DRAFT_DIR / name).read_bytes() == (builtin.MODEL_DIR / name).read_bytes()
    draft = AutoModelForCausalLM.from_pretrained(builtin.DRAFT_DIR)
    assert draft.config.vocab_size == target.model.config.vocab_size
    assert 5 * sum(p.numel() for p in draft.parameters()) < sum(p.numel() for p in target.model.parameters())
