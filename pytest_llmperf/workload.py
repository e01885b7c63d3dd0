"""The workload: which prompts a round generates for, formatted the way the model expects.

Rows come from the built-in data file, a local .json/.jsonl/.csv/.parquet file or a hub dataset,
all through ``datasets.load_dataset``. A dataset that only has a ``train`` split is split 80/20
with seed 42 (as the FoodExtract tutorial does) and the configured split is taken from that.

``synthetic`` has no rows: its prompts are token ids drawn from a seed for the model's tokenizer,
exactly ``prompt_tokens`` of them each (``synthetic_workload``), and it generates exactly
``max_new_tokens`` (EOS ignored): the fixed ``batch x prompt tokens x new tokens`` shape.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import builtin
from .config import WorkloadSpec
from .options import BUILTIN

FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}
SPLIT_SEED, TEST_SIZE = 42, 0.2
SYNTHETIC_SEED = 0
ROUND_TRIPS = 50  # tries to make a drawn prompt one its own text tokenizes back to


class WorkloadError(Exception):
    """A one-line reason the dataset cannot be used (unknown id, missing split or column)."""


@dataclass(frozen=True)
class Rows:
    """The selected rows of the dataset, before any tokenizer is involved."""

    prompts: tuple[str, ...]
    references: tuple[str | None, ...] | None  # None for a row without a reference
    reference_column: str | None


@dataclass(frozen=True)
class Workload:
    """Rows formatted for one tokenizer: what every strategy generates for."""

    spec: WorkloadSpec
    rows: Rows
    texts: tuple[str, ...]  # model input text; chat-template formatted when the tokenizer has one
    input_ids: tuple[tuple[int, ...], ...]  # the prompt ids those texts tokenize to (unpadded)
    add_special_tokens: bool  # False when the chat template already carries BOS and friends
    dataset: Any  # datasets.Dataset with a "text" column, for KeyDataset streaming

    @property
    def prompts(self) -> tuple[str, ...]:
        return self.rows.prompts

    @property
    def prompts_digest(self) -> str:
        """The raw prompts (before any template): part of a case's identity."""
        from .identity import digest

        return digest(list(self.rows.prompts))

    @property
    def references(self) -> tuple[str, ...] | None:
        return self.rows.references

    def longest(self, count: int) -> "Workload":
        """The ``count`` longest prompts (in tokens), in workload order: the batch of that size that
        needs the most memory."""
        by_length = sorted(range(len(self.input_ids)), key=lambda i: (-len(self.input_ids[i]), i))
        keep = sorted(by_length[:count])
        pick = lambda values: tuple(values[i] for i in keep)  # noqa: E731
        rows = Rows(pick(self.rows.prompts), pick(self.rows.references) if self.rows.references else None,
                    self.rows.reference_column)
        return Workload(self.spec, rows, pick(self.texts), pick(self.input_ids), self.add_special_tokens,
                        self.dataset.select(keep))


def load_rows(spec: WorkloadSpec) -> Rows:
    split = load_split(spec.dataset, spec.split)
    columns = split.column_names
    if spec.prompt_column not in columns:
        raise WorkloadError(
            f"dataset {spec.dataset!r} has no prompt column {spec.prompt_column!r} (columns: {', '.join(columns)}); "
            "set --llmperf-prompt-column"
        )
    reference_column = spec.reference_column
    if reference_column is None and spec.dataset == BUILTIN:
        reference_column = builtin.REFERENCE_COLUMN
    if reference_column is not None and reference_column not in columns:
        raise WorkloadError(
            f"dataset {spec.dataset!r} has no reference column {reference_column!r} (columns: {', '.join(columns)}); "
            "set --llmperf-reference-column or leave it unset"
        )
    if spec.num_samples is not None:
        if spec.num_samples > len(split):
            warnings.warn(UserWarning(
                f"llmperf: --llmperf-num-samples {spec.num_samples}, but dataset {spec.dataset!r} split "
                f"{spec.split!r} has {len(split)} rows; running all {len(split)}"))
        split = split.select(range(min(spec.num_samples, len(split))))
    if len(split) == 0:
        raise WorkloadError(f"dataset {spec.dataset!r} split {spec.split!r} has no rows")
    prompts = tuple("" if value is None else str(value) for value in split[spec.prompt_column])
    empty = sum(not prompt.strip() for prompt in prompts)
    if empty == len(prompts):
        raise WorkloadError(f"dataset {spec.dataset!r} split {spec.split!r}: every prompt in column "
                            f"{spec.prompt_column!r} is empty ({len(prompts)} rows)")
    if empty:
        warnings.warn(UserWarning(f"llmperf: {empty} of {len(prompts)} prompts in column {spec.prompt_column!r} "
                                  "are empty; they are generated for like the others"))
    references = None
    if reference_column:  # a missing cell is missing, not the text "None"
        references = tuple(None if value is None or not str(value).strip() else str(value)
                           for value in split[reference_column])
        missing = sum(reference is None for reference in references)
        if missing:
            warnings.warn(UserWarning(f"llmperf: {missing} of {len(references)} rows have no reference in column "
                                      f"{reference_column!r}; the reference scores leave them out"))
    return Rows(prompts, references, reference_column)


def format_workload(spec: WorkloadSpec, rows: Rows, tokenizer) -> Workload:
    """Apply the chat template (``add_generation_prompt=True``) when there is one, else use raw prompts."""
    from datasets import Dataset

    if getattr(tokenizer, "chat_template", None):
        texts = tuple(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
            for prompt in rows.prompts
        )
        add_special_tokens = False
    else:
        texts, add_special_tokens = rows.prompts, True
    input_ids = tuple(tuple(ids) for ids in tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"])
    return Workload(spec, rows, texts, input_ids, add_special_tokens, Dataset.from_dict({"text": list(texts)}))


def synthetic_workload(spec: WorkloadSpec, tokenizer) -> Workload:
    """``num_samples`` prompts of exactly ``prompt_tokens`` token ids, drawn with a fixed seed from the
    tokenizer's vocabulary (special tokens left out), without a chat template or BOS.

    Every strategy tokenizes the prompt texts inside its round, so each prompt is made one whose
    text tokenizes back to exactly its ids: decode and re-encode (ids that merge into a word, or
    bytes of no character, come back otherwise), cut or top up to the length with new draws, until
    it holds (a few rounds, each changing only the tail)."""
    from datasets import Dataset

    rng = random.Random(SYNTHETIC_SEED)
    special = set(tokenizer.all_special_ids)
    vocabulary = [token for token in range(tokenizer.vocab_size) if token not in special]
    texts, ids = [], []
    for index in range(spec.num_samples):
        prompt = rng.choices(vocabulary, k=spec.prompt_tokens)
        for _ in range(ROUND_TRIPS):
            again = round_trip(tokenizer, prompt)
            if again == prompt:
                break
            if len(again) >= spec.prompt_tokens:  # cut, back to where a cut splits no character or word
                again = again[:spec.prompt_tokens - 1]
                while again and round_trip(tokenizer, again) != again:
                    again = again[:-1]
            prompt = again + rng.choices(vocabulary, k=spec.prompt_tokens - len(again))
        else:
            raise WorkloadError(f"synthetic prompt {index}: no {spec.prompt_tokens}-token text that tokenizes back to "
                                f"itself found in {ROUND_TRIPS} tries with this tokenizer")
        texts.append(tokenizer.decode(prompt))
        ids.append(tuple(prompt))
    rows = Rows(tuple(texts), None, None)
    return Workload(spec, rows, tuple(texts), tuple(ids), False, Dataset.from_dict({"text": texts}))


def round_trip(tokenizer, ids: list[int]) -> list[int]:
    """What the text of ``ids`` tokenizes to, as a strategy tokenizes a prompt (no special tokens)."""
    return tokenizer(tokenizer.decode(ids), add_special_tokens=False)["input_ids"]


def check_context(workload: Workload, model_config) -> None:
    """Prompt tokens + ``max_new_tokens`` against the model's context, said up front: an error when
    prompts alone do not fit (the model would run past its position embeddings, or truncate), a
    warning naming how many prompts when only the generation budget runs past it."""
    context = context_length(model_config)
    if context is None:
        return
    lengths = [len(ids) for ids in workload.input_ids]
    too_long = [length for length in lengths if length > context]
    if too_long:
        raise WorkloadError(f"{len(too_long)} of {len(lengths)} prompts are longer than the model's context of "
                            f"{context} tokens (longest {max(too_long)} tokens); shorten them or use another model")
    budget = workload.spec.max_new_tokens
    past = [length for length in lengths if length + budget > context]
    if past:
        warnings.warn(UserWarning(
            f"llmperf: {len(past)} of {len(lengths)} prompts plus --llmperf-max-new-tokens {budget} exceed the "
            f"model's context of {context} tokens (longest prompt {max(past)} tokens); generations that run "
            f"that long go past it"))


def context_length(model_config) -> int | None:
    """The model's context in tokens (``max_position_embeddings`` or an older name), or None."""
    config = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def load_split(source: str, split: str):
    """One ``datasets.Dataset`` split of a built-in, local or hub dataset (80/20 seed-42 split of a
    train-only dataset for ``train``/``test``)."""
    from datasets import load_dataset

    try:
        if source == BUILTIN:
            splits = load_dataset("json", data_files=str(builtin.DATASET_FILE))
        elif Path(source).is_file():
            suffix = Path(source).suffix.lower()
            if suffix not in FILE_BUILDERS:
                raise WorkloadError(
                    f"dataset file {source!r} has an unsupported type {suffix!r}; use one of {', '.join(FILE_BUILDERS)}"
                )
            if not Path(source).read_bytes().strip():  # datasets says only "StopIteration" for an empty .jsonl
                raise WorkloadError(f"dataset file {source!r} is empty")
            splits = load_dataset(FILE_BUILDERS[suffix], data_files=source)
        else:
            splits = load_dataset(source)
    except WorkloadError:
        raise
    except Exception as exc:  # datasets raises many types for "not found" / "offline"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkloadError(f"cannot load dataset {source!r}: {message}") from None
    if list(splits) == ["train"]:  # split 80/20 with seed 42, as the FoodExtract tutorial does
        if split in ("train", "test"):
            return splits["train"].train_test_split(test_size=TEST_SIZE, seed=SPLIT_SEED)[split]
        raise WorkloadError(f"dataset {source!r} has no split {split!r} (splits: train, test: "
                            f"its only split cut {1 - TEST_SIZE:.0%}/{TEST_SIZE:.0%} with seed {SPLIT_SEED})")
    if split in splits:
        return splits[split]
    raise WorkloadError(f"dataset {source!r} has no split {split!r} (splits: {', '.join(splits)})")
