"""Output consistency: a run's generations against the batch-size-1 baseline, against the unquantized
model's bs=1 outputs (a quantized configuration), and against the reference column.

Similarity is difflib's ``SequenceMatcher`` ratio over whitespace-split words, as the FoodExtract
tutorial computes it; exact match compares generated token ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from statistics import fmean
from typing import Sequence

from ..strategies.base import Generations

# The kinds of divergence ``verdicts.diagnose`` tells apart (defined here, below it, so that a result can count them)
NEAR_TIE, CONFIDENT, ENDED, CHANGED_INPUT = "near-tie", "confident change", "length only", "changed input"


def similarity(a: str, b: str) -> float:
    a_words, b_words = a.split(), b.split()
    if not a_words and not b_words:
        return 1.0
    return SequenceMatcher(None, a_words, b_words).ratio()


@dataclass(frozen=True)
class SampleDiff:
    index: int
    exact: bool
    similarity: float


@dataclass(frozen=True)
class Consistency:
    """A run compared sample by sample to the bs=1 baseline."""

    samples: tuple[SampleDiff, ...]
    length_matches: int  # samples whose generated length equals the baseline's

    @property
    def exact_match(self) -> float:
        return sum(sample.exact for sample in self.samples) / len(self.samples)

    @property
    def similarity(self) -> float:
        return fmean(sample.similarity for sample in self.samples)

    def worst(self, count: int = 3) -> list[SampleDiff]:
        differing = [sample for sample in self.samples if not sample.exact]
        return sorted(differing, key=lambda sample: (sample.similarity, sample.index))[:count]


def compare(candidate: Generations, baseline: Generations) -> Consistency:
    if candidate.num_samples != baseline.num_samples:
        raise ValueError(f"{candidate.num_samples} outputs compared with a baseline of {baseline.num_samples}")
    samples, length_matches = [], 0
    for index, (got, want) in enumerate(zip(candidate.samples, baseline.samples)):
        exact = got.token_ids == want.token_ids
        samples.append(SampleDiff(index, exact, 1.0 if exact else similarity(got.text, want.text)))
        length_matches += len(got.token_ids) == len(want.token_ids)
    return Consistency(tuple(samples), length_matches)


@dataclass(frozen=True)
class AgainstUnquantized:
    """A quantized configuration's outputs against the unquantized model's bs=1 outputs (the same model,
    dtype, attention and compile mode), and why each differing sample differs: a divergence diagnosed
    at its first differing token under the quantized model (``verdicts.diagnose``: a near-tie, where
    quantization tipped a close call, or a confident change, where it changed what the model prefers)."""

    consistency: Consistency
    reference: Generations  # the unquantized bs=1 outputs
    divergences: tuple  # ``diagnose.Divergence`` of each differing sample, in sample order

    @property
    def exact_match(self) -> float:
        return self.consistency.exact_match

    @property
    def similarity(self) -> float:
        return self.consistency.similarity

    @property
    def length_match(self) -> float:
        return self.consistency.length_matches / len(self.consistency.samples)

    def kinds(self) -> dict[str, int]:
        """Differing samples per kind of divergence: ``{"near-tie": 2, "confident change": 1, "length only": 0}``
        (the inputs are the same, so none is a changed input)."""
        counts = dict.fromkeys((NEAR_TIE, CONFIDENT, ENDED), 0)
        for divergence in self.divergences:
            counts[divergence.kind] += 1
        return counts


def divergence_summary(kinds: dict[str, int]) -> str:
    """``2 near-tie, 1 confident change``; ``none`` when no sample differs."""
    return ", ".join(f"{count} {kind}" for kind, count in kinds.items() if count) or "none"


@dataclass(frozen=True)
class ReferenceScore:
    similarity: float  # mean word-level similarity to the reference column, over rows that have one
    exact_match: float  # share of those outputs equal to the reference (whitespace-normalised)
    scored: int  # rows with a reference
    missing: int  # rows without one, left out of both scores


def score_against_references(generations: Generations,
                             references: Sequence[str | None] | None) -> ReferenceScore | None:
    """None without a reference column, or when no row has a reference."""
    if references is None:
        return None
    pairs = [(sample.text, ref) for sample, ref in zip(generations.samples, references) if ref is not None]
    if not pairs:
        return None
    return ReferenceScore(
        similarity=fmean(similarity(text, ref) for text, ref in pairs),
        exact_match=sum(text.split() == ref.split() for text, ref in pairs) / len(pairs),
        scored=len(pairs),
        missing=len(references) - len(pairs),
    )
