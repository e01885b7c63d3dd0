"""What speculative decoding proposed and kept, counted exactly through transformers' own candidate
generator.

``generate`` with an ``assistant_model`` or ``prompt_lookup_num_tokens`` makes a candidate generator
(``GenerationMixin._get_candidate_generator``) and, at every step, asks it for candidate tokens
(``get_candidates``), verifies them in one forward pass of the main model, appends what it keeps,
and tells the generator the outcome (``update_candidate_strategy``). ``DraftCounter`` wraps the
main model's ``_get_candidate_generator`` (an attribute of the model object, for as long as a case
runs: pipelines reach it too) and, on each generator it returns, those two calls:

* **proposed**: the candidate tokens the main model verified, step by step;
* **accepted**: the leading candidates equal to the tokens the step appended, compared token by
  token. transformers' own ``num_matches`` is not used: where a generation ends on an EOS that the
  draft proposed, it counts that EOS as the main model's token, not an accepted one;
* **steps**: forward passes of the main model over candidates (the prefill included): a generation
  of n tokens takes n of them without speculation;
* **calls**: ``generate`` calls that went through speculative decoding, so that a strategy that
  never passed the draft on is caught, not reported as speculative.

The comparison runs on the device, into one running total, without a synchronisation: the total is
read after the round, outside its timed region (``Speculation``). What the counting costs is in
docs/benchmarks/cpu-2core-speculative.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .instruments import Instrument

WRAPPED = "_get_candidate_generator"


@dataclass(frozen=True)
class Acceptance:
    """One round's (or several rounds') counts."""

    calls: int = 0
    steps: int = 0
    proposed: int = 0
    accepted: int = 0

    def __add__(self, other: "Acceptance") -> "Acceptance":
        return Acceptance(self.calls + other.calls, self.steps + other.steps, self.proposed + other.proposed,
                          self.accepted + other.accepted)

    def __sub__(self, other: "Acceptance") -> "Acceptance":
        return Acceptance(self.calls - other.calls, self.steps - other.steps, self.proposed - other.proposed,
                          self.accepted - other.accepted)

    @property
    def rate(self) -> float | None:
        return self.accepted / self.proposed if self.proposed else None


class DraftCounter:
    """Counts what speculative decoding proposed and kept while it is entered (``with``)."""

    def __init__(self, model) -> None:
        self.model = model
        self.calls = self.steps = self.proposed = 0
        self._accepted = None  # a running total on the device (a 0-d tensor), read by ``reading``
        self._step: tuple | None = None  # (where the step's candidates start, the candidate tokens)

    def __enter__(self) -> "DraftCounter":
        if WRAPPED in self.model.__dict__:
            raise RuntimeError("draft tokens are already being counted on this model: one DraftCounter at a time")
        original = getattr(self.model, WRAPPED)

        def candidate_generator(*args, **kwargs):
            generator = original(*args, **kwargs)
            self._wrap(generator)
            self.calls += 1
            return generator

        setattr(self.model, WRAPPED, candidate_generator)  # shadows the class's method on this object only
        return self

    def __exit__(self, *exc) -> None:
        self.model.__dict__.pop(WRAPPED, None)

    def _wrap(self, generator) -> None:
        get_candidates, update = generator.get_candidates, generator.update_candidate_strategy

        def counted_candidates(input_ids, *args, **kwargs):
            candidates, logits = get_candidates(input_ids, *args, **kwargs)
            start = input_ids.shape[1]
            self._step = (start, candidates[:, start:])
            self.steps += 1
            self.proposed += candidates.shape[1] - start
            return candidates, logits

        def counted_update(input_ids, scores, num_matches, *args, **kwargs):
            start, proposed = self._step
            kept = input_ids[:, start:]
            length = min(proposed.shape[1], kept.shape[1])
            if length:  # the leading run of candidates equal to what was appended, without a sync
                same = proposed[:, :length].to(kept.device) == kept[:, :length]
                run = same.long().cumprod(dim=-1).sum()
                self._accepted = run if self._accepted is None else self._accepted.add_(run)
            self._step = None
            return update(input_ids, scores, num_matches, *args, **kwargs)

        generator.get_candidates, generator.update_candidate_strategy = counted_candidates, counted_update

    def reading(self) -> Acceptance:
        """The counts so far (reading the accepted total waits for the device: call it outside timed work)."""
        accepted = 0 if self._accepted is None else int(self._accepted.item())
        return Acceptance(self.calls, self.steps, self.proposed, accepted)


class Speculation(Instrument):
    """Each round's ``Acceptance``, read after the round (untimed)."""

    name = "speculation"

    def __init__(self, counter: DraftCounter) -> None:
        self.counter = counter
        self._before = Acceptance()

    def before_round(self) -> None:
        self._before = self.counter.reading()

    def after_round(self, generations=None) -> Acceptance:
        return self.counter.reading() - self._before


KEYS = ("draft_tokens_proposed", "draft_tokens_accepted", "acceptance_rate", "tokens_per_forward")


def figures(readings: Sequence[Acceptance], generated_tokens: Sequence[int]) -> dict:
    """``extra_info`` fields from rounds' counts and the tokens each round generated: sums over the
    rounds, the acceptance rate (accepted over proposed; None when nothing was proposed) and the
    tokens generated per forward pass of the main model (1 without speculation)."""
    total = sum(readings, Acceptance())
    return {
        "draft_tokens_proposed": total.proposed,
        "draft_tokens_accepted": total.accepted,
        "acceptance_rate": total.rate,
        "tokens_per_forward": sum(generated_tokens) / total.steps if total.steps else None,
    }
