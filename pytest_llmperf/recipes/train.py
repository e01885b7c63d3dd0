"""Train the tiny built-in Llama model and its tokenizer on the synthetic dataset, and its draft.

Run ``python -m pytest_llmperf.recipes.train`` (offline, CPU, well under a minute). It writes a
Hugging Face model directory to ``files/model`` that loads with ``AutoModelForCausalLM`` /
``AutoTokenizer`` like any hub checkpoint.

``python -m pytest_llmperf.recipes.train --draft`` trains the built-in draft model of speculative
decoding (``--llmperf-speculative assisted``) into ``files/draft``: a much smaller Llama (``DRAFT``),
trained the same way on the same data with the built-in model's own tokenizer (read from
``files/model``, not trained again), so that its token ids are the main model's.

Training is deterministic: fixed seeds, fixed thread count and a fixed data order.
Only the train split is used; the loss covers the assistant answer tokens only.
"""

from __future__ import annotations

import argparse
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from datasets import Dataset
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from pytest_llmperf.model.builtin import (
    DRAFT_DIR,
    MODEL_DIR,
    PROMPT_COLUMN,
    REFERENCE_COLUMN,
)
from pytest_llmperf.model.workload import load_split
from pytest_llmperf.settings.options import BUILTIN

SEED = 0
NUM_THREADS = 2
VOCAB_SIZE = 1024
BATCH_SIZE = 32
NUM_STEPS = 400
LEARNING_RATE = 3e-3
WARMUP_STEPS = 20
WEIGHT_DECAY = 0.01


@dataclass(frozen=True)
class Shape:
    """The sizes of a Llama the recipe trains."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int


MAIN = Shape(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4)  # 984K parameters
DRAFT = Shape(hidden_size=64, intermediate_size=192, num_hidden_layers=2, num_attention_heads=2)  # 172K parameters

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
BOS, EOS, PAD = "<|bos|>", "<|end|>", "<|pad|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
# Each turn is "<|role|>\n{content}<|end|>\n"; the generation prompt opens an
# assistant turn, which the model closes by emitting <|end|> (the EOS token).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def prompt_ids(tokenizer: PreTrainedTokenizerBase, sequence: str) -> list[int]:
    """Token ids of the chat-formatted prompt (the template already carries BOS)."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": sequence}], add_generation_prompt=True, tokenize=False
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def build_tokenizer(train: Dataset) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on the train split's prompts and answers."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[PAD, BOS, EOS, *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(train[PROMPT_COLUMN]) + list(train[REFERENCE_COLUMN]), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=ROLE_TOKENS,
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
        model_max_length=256,
    )


def build_model(tokenizer: PreTrainedTokenizerFast, shape: Shape = MAIN) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_attention_heads,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def encode_examples(tokenizer: PreTrainedTokenizerFast, train: Dataset):
    """(input_ids, labels) pairs; labels mask the prompt with -100."""
    examples = []
    for sequence, answer in zip(train[PROMPT_COLUMN], train[REFERENCE_COLUMN]):
        prompt = prompt_ids(tokenizer, sequence)
        target = tokenizer(answer, add_special_tokens=False)["input_ids"] + [
            tokenizer.eos_token_id
        ]
        examples.append((prompt + target, [-100] * len(prompt) + target))
    return examples


def collate(examples, pad_id: int):
    """Right-pad a batch (training only; positions then start at 0 for every row)."""
    width = max(len(ids) for ids, _ in examples)
    input_ids, labels, mask = [], [], []
    for ids, labs in examples:
        pad = width - len(ids)
        input_ids.append(ids + [pad_id] * pad)
        labels.append(labs + [-100] * pad)
        mask.append([1] * len(ids) + [0] * pad)
    return torch.tensor(input_ids), torch.tensor(labels), torch.tensor(mask)


def batches(lengths: list[int], rng: random.Random):
    """Endless stream of index batches: reshuffled epochs, fixed by ``rng``.

    Each epoch is cut into batches of similar length (less padding, faster steps),
    then the batch order is shuffled.
    """
    while True:
        order = list(range(len(lengths)))
        rng.shuffle(order)
        order.sort(key=lambda i: lengths[i])  # stable: equal lengths stay shuffled
        epoch = [order[start : start + BATCH_SIZE]
                 for start in range(0, len(order) - BATCH_SIZE + 1, BATCH_SIZE)]
        rng.shuffle(epoch)
        yield from epoch


def train(draft: bool = False, directory: Path | None = None) -> None:
    """The built-in model (its tokenizer trained first), or with ``draft`` its draft, written to
    ``directory`` (default: where the package ships it)."""
    directory = directory or (DRAFT_DIR if draft else MODEL_DIR)
    random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(NUM_THREADS)
    torch.use_deterministic_algorithms(True)

    train_split = load_split(BUILTIN, "train")  # the same 80/20 seed-42 split perf runs use
    # the draft's token ids must be the main model's: its tokenizer, as shipped
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR) if draft else build_tokenizer(train_split)
    model = build_model(tokenizer, DRAFT if draft else MAIN)
    examples = encode_examples(tokenizer, train_split)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"vocab={len(tokenizer)} params={n_params:,} train_rows={len(examples)}")

    lengths = [len(ids) for ids, _ in examples]
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    # Linear warmup, then linear decay to zero.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / WARMUP_STEPS, (NUM_STEPS - step) / (NUM_STEPS - WARMUP_STEPS)),
    )
    model.train()
    start = time.perf_counter()
    for step, indices in zip(range(NUM_STEPS), batches(lengths, random.Random(SEED))):
        input_ids, labels, mask = collate([examples[i] for i in indices], tokenizer.pad_token_id)
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        if step % 50 == 0 or step == NUM_STEPS - 1:
            print(f"step {step:4d} loss {loss.item():.4f}")
    print(f"training took {time.perf_counter() - start:.1f}s")

    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=32,
    )
    shutil.rmtree(directory, ignore_errors=True)
    model.save_pretrained(directory)
    if draft:  # the main model's tokenizer files, byte for byte
        for name in TOKENIZER_FILES:
            shutil.copy(MODEL_DIR / name, directory / name)
    else:
        tokenizer.save_pretrained(directory)
    print(f"wrote {directory}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Train the built-in model, or its draft.")
    parser.add_argument("--draft", action="store_true", help="train the draft model of speculative decoding")
    parser.add_argument("--out", type=Path, default=None, help="write here instead of the package's files")
    arguments = parser.parse_args()
    train(draft=arguments.draft, directory=arguments.out)
