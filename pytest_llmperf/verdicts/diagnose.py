"""Why did a sample's output change? One untimed, teacher-forced forward pass at the first divergence.

Given the tokens a reference produced (the bs=1 baseline, or a stored earlier run) and the tokens
produced now, find the first position where they differ, run the model now under test once at
batch size 1 over the prompt plus the reference's tokens up to that position, and read the
log-probabilities of both candidate tokens there. The margin ``log p(now) - log p(reference)``
says what kind of change it was:

* a **changed input**, whatever the margin: something that changes the answer differs for this
  sample (its prompt token ids, the chat template, the tokenizer, the generation config, the
  weights), named by that cause. It is never numeric drift.
* a **near-tie** (margin within ``--llmperf-near-tie`` either way, and only where the inputs are
  identical): the model barely prefers one token over the other, and a different kernel, batch
  shape or piece of hardware tipped it. Numeric drift.
* a **confident change** (a larger margin, often at the first tokens): a behaviour change. With a
  large positive margin the model now really prefers another answer (a chat template, tokenizer or
  generation default changed what it sees); with a large negative one the model at bs=1 still
  prefers the reference's token, so what changed is how the strategy ran it (padding, attention
  mask, a prompt altered inside the strategy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..measure.compare import CHANGED_INPUT, CONFIDENT, ENDED, NEAR_TIE


@dataclass(frozen=True)
class Divergence:
    index: int  # the sample
    position: int  # first generated-token position where the ids differ
    reference_token: int | None  # None: the reference ended there
    new_token: int | None  # None: the new output ended there
    margin: float | None  # log p(new) - log p(reference) under the model now, teacher-forced; None: no token to compare
    kind: str  # NEAR_TIE, CONFIDENT, ENDED, CHANGED_INPUT
    cause: str = ""  # CHANGED_INPUT: what differs in what the model was given

    @property
    def tolerable(self) -> bool:
        return self.kind == NEAR_TIE

    def describe(self, tokenizer) -> str:
        where = f"at generated token {self.position}: {_token(tokenizer, self.reference_token)} (reference) vs " \
                f"{_token(tokenizer, self.new_token)} (now)"
        kind = f"{self.kind} ({self.cause})" if self.cause else self.kind
        if self.margin is None:
            return f"{kind} {where}"
        return f"{kind} {where}, log-prob margin {self.margin:+.3f}"


def first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    for position, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return position
    return None if len(a) == len(b) else min(len(a), len(b))


def diagnose(target, index: int, prompt_ids: Sequence[int], reference: Sequence[int], new: Sequence[int],
             near_tie: float, cause: str = "") -> Divergence | None:
    """None when the two outputs are identical. ``cause``: what differs in the sample's inputs
    between the reference and now ('' when they are identical); a divergence with one is a
    changed input, never a near-tie."""
    position = first_difference(reference, new)
    if position is None:
        return None
    reference_token = reference[position] if position < len(reference) else None
    new_token = new[position] if position < len(new) else None
    if reference_token is None or new_token is None:
        return Divergence(index, position, reference_token, new_token, None, CHANGED_INPUT if cause else ENDED, cause)
    margin = _margin(target, [*prompt_ids, *reference[:position]], reference_token, new_token)
    kind = CHANGED_INPUT if cause else NEAR_TIE if abs(margin) <= near_tie else CONFIDENT
    return Divergence(index, position, reference_token, new_token, margin, kind, cause)


def _margin(target, ids: list[int], reference_token: int, new_token: int) -> float:
    import torch

    with torch.no_grad():
        logits = target.model(input_ids=torch.tensor([ids], device=target.device)).logits[0, -1]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
    return float(log_probs[new_token] - log_probs[reference_token])


def _token(tokenizer, token: int | None) -> str:
    return "<end>" if token is None else repr(tokenizer.decode([token]))
