"""Checks for the built-in offline workload (dataset + tiny model) shipped in the package."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

from pytest_llmperf import builtin  # noqa: E402
from pytest_llmperf.builtin import dataset  # noqa: E402
from pytest_llmperf.builtin.train import load_splits, prompt_ids  # noqa: E402
from pytest_llmperf.builtin.verify import generate_ids, load  # noqa: E402

# Test-split rows (by index) that the shipped model extracts exactly: "none",
# food-only, drink-only, two-item and food+drink rows.
EXACT_ROWS = [2, 3, 5, 7, 8, 14, 15]


@pytest.fixture(scope="module")
def splits():
    return load_splits()


@pytest.fixture(scope="module")
def model_and_tokenizer():
    torch.set_num_threads(2)
    return load("sdpa")


def test_generator_reproduces_shipped_file():
    assert dataset.to_jsonl(dataset.generate()) == builtin.DATASET_FILE.read_bytes()


def test_dataset_rows():
    rows = [json.loads(line) for line in builtin.DATASET_FILE.read_text("utf-8").splitlines()]
    assert len(rows) == 1000
    for row in rows:
        assert list(row) == [builtin.PROMPT_COLUMN, builtin.REFERENCE_COLUMN]
        assert row[builtin.PROMPT_COLUMN].strip() and row[builtin.REFERENCE_COLUMN].strip()
    assert 0.1 < sum(r[builtin.REFERENCE_COLUMN] == "none" for r in rows) / len(rows) < 0.3


def test_split_sizes(splits):
    assert (len(splits["train"]), len(splits["test"])) == (800, 200)


def test_model_and_tokenizer(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    assert isinstance(tokenizer, PreTrainedTokenizerFast)
    assert sum(p.numel() for p in model.parameters()) < 10_000_000
    assert model.dtype == torch.float32
    assert tokenizer.chat_template
    assert tokenizer.pad_token is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.padding_side == "left"
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "A bowl of soup."}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.startswith(tokenizer.bos_token) and prompt.endswith("<|assistant|>\n")


def test_generation_matches_reference_and_is_batch_invariant(splits, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    test = splits["test"]
    prompts = [prompt_ids(tokenizer, seq) for seq in test[builtin.PROMPT_COLUMN]]
    references = list(test[builtin.REFERENCE_COLUMN])
    single = generate_ids(model, tokenizer, prompts[:16], 1)
    texts = [tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in single]
    assert [texts[i] for i in EXACT_ROWS] == [references[i] for i in EXACT_ROWS]
    assert generate_ids(model, tokenizer, prompts[:16], 8) == single
