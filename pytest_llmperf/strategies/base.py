"""The one interface every batching strategy implements, and the one result type they return.

A strategy turns the workload's chat-formatted prompt texts into generated token ids at a given
batch size. ``generate`` is one timed round over the whole workload; ``setup``/``teardown`` run
once per test outside the timed region. Tokenizing the prompts and decoding the answers are part
of the round for every strategy, so they are compared like for like.

A round reports when each request starts being processed and when each of its tokens reaches the
host through ``ctx.latency`` (``latency_reporter.LatencyReporter``): ``ctx.latency.streamer()`` for
``generate`` and pipelines, ``start``/``token``/``request`` otherwise. A strategy that reports
nothing still runs; its latency is "not reported".

A static-batching round also reports the attention mask of each batch it sends to the model through
``ctx.padding`` (``PaddingCounter``), from which the padding fraction of its prefill is computed after
the rounds. A strategy that sends none (continuous batching packs its sequences: nothing is padded)
has no padding fraction.

Speculative decoding (``--llmperf-speculative``) reaches a strategy through ``ctx.generation_config``
(prompt lookup) and ``ctx.generate_kwargs`` (the draft model): a strategy that passes both to every
``generate`` or pipeline call sets ``speculative = True``; any other is skipped for it
(``speculative_unsupported_reason``), and one that claims it and does not pass them on fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from .latency_reporter import LatencyReporter

if TYPE_CHECKING:  # pragma: no cover
    from ..model.loading import LoadedModel
    from ..model.workload import Workload


@dataclass(frozen=True)
class Generation:
    """One sample's output: generated ids up to and including the first EOS (no prompt, no padding)."""

    token_ids: tuple[int, ...]
    text: str


@dataclass(frozen=True)
class Generations:
    """What one round produced, in workload order."""

    samples: tuple[Generation, ...]

    @property
    def generated_tokens(self) -> int:
        return sum(len(sample.token_ids) for sample in self.samples)

    @property
    def num_samples(self) -> int:
        return len(self.samples)


class PaddingCounter:
    """``RunContext.padding``: the attention masks of the batches one round sent to the model, and
    from them the padding fraction of its prefill (padded positions over all positions).

    A static-batching strategy calls ``sent(attention_mask)`` once per batch, with the mask the model
    is given. Inside the round that keeps a reference and nothing else (no arithmetic, no device
    synchronisation); ``fraction()`` counts after the rounds. The runner calls ``begin()`` as each
    round starts, so the count is the last round's (every round sends the same batches).
    """

    def __init__(self) -> None:
        self._masks: list = []

    def begin(self) -> None:
        self._masks = []

    def sent(self, attention_mask) -> None:
        """One batch's attention mask, (batch, prompt length): 1 for a prompt token, 0 for padding."""
        self._masks.append(attention_mask)

    def fraction(self) -> float | None:
        """Padded positions over all positions in the prefill of the last round; None when the round
        reported no batch (the strategy does not pad, or does not say)."""
        total = sum(mask.numel() for mask in self._masks)
        if not total:
            return None
        real = sum(int(mask.count_nonzero()) for mask in self._masks)
        return (total - real) / total


@dataclass
class RunContext:
    """What a strategy gets to work with for one test."""

    target: "LoadedModel"
    workload: "Workload"
    batch_size: int
    generation_config: Any  # transformers.GenerationConfig: greedy, max_new_tokens, eos/pad set
    generate_kwargs: dict = field(default_factory=dict)  # for every generate/pipeline call: the draft model of
    # speculative decoding (assistant_model); empty without it
    state: dict = field(default_factory=dict)  # scratch space between setup, rounds and teardown
    latency: LatencyReporter | None = None  # where a round reports its requests' times (latency.py)
    padding: PaddingCounter = field(default_factory=PaddingCounter)  # the masks a round sent

    def __post_init__(self) -> None:
        if self.latency is None:
            self.latency = LatencyReporter(len(self.workload.texts))

    @property
    def model(self):
        return self.target.model

    @property
    def tokenizer(self):
        return self.target.tokenizer

    def batches(self) -> list[list[str]]:
        texts = list(self.workload.texts)
        return [texts[i : i + self.batch_size] for i in range(0, len(texts), self.batch_size)]

    def finish(self, generated: Sequence[Sequence[int]]) -> Generations:
        """Cut each sample's new ids after the first EOS (dropping post-EOS padding) and decode. The
        EOS ids are the generation config's (none when the workload ignores EOS), else the model's."""
        configured = getattr(self.generation_config, "eos_token_id", None)
        eos = self.target.eos_token_ids if configured is None else \
            set(configured if isinstance(configured, (list, tuple)) else [configured])
        samples = []
        for ids in generated:
            ids = [int(token) for token in ids]
            end = next((i + 1 for i, token in enumerate(ids) if token in eos), len(ids))
            kept = tuple(ids[:end])
            samples.append(Generation(kept, self.tokenizer.decode(kept, skip_special_tokens=True)))
        return Generations(tuple(samples))  # the runner checks the count against the prompts


class Strategy:
    """Subclass this and decorate with ``@register_strategy("name")`` to add a strategy."""

    # True: passes ``ctx.generation_config`` and ``ctx.generate_kwargs`` to every ``generate`` (or
    # pipeline) call, so that speculative decoding runs through it. False, or why not (a phrase).
    speculative: bool | str = False

    def unsupported_reason(self, target: "LoadedModel") -> str | None:
        """Why this strategy cannot run on this loaded model (the test is skipped), or None."""
        return None

    def setup(self, ctx: RunContext) -> None:
        """Untimed preparation, once per test (build a pipeline, a manager...)."""

    def generate(self, ctx: RunContext) -> Generations:
        """One timed round: every prompt of the workload at ``ctx.batch_size``."""
        raise NotImplementedError

    def teardown(self, ctx: RunContext) -> None:
        """Untimed clean-up, once per test, also after a failure."""


SPECULATIVE_BATCH_SIZE = ("runs at batch size 1 only: transformers' assisted generation (draft model or prompt "
                          "lookup) takes one sequence per generate call")


def speculative_unsupported_reason(strategy: Strategy, name: str, mode: str, batch_size) -> str | None:
    """Why speculative decoding ``mode`` cannot run with this strategy at this batch size, or None.
    Needs no model: the skip reason of a case, and what a filter of combinations can ask first."""
    if mode == "none":
        return None
    if isinstance(strategy.speculative, str):
        return f"speculative decoding ({mode}) does not run with strategy {name}: {strategy.speculative}"
    if not strategy.speculative:
        return (f"speculative decoding ({mode}) does not run with strategy {name}: it does not declare "
                "speculative = True, which says it passes ctx.generation_config and ctx.generate_kwargs to generate")
    if batch_size != 1:
        return f"speculative decoding ({mode}) {SPECULATIVE_BATCH_SIZE}"
    return None


def generated_part(sequence: Sequence[int], prompt_ids: Sequence[int], pad_token_id: int | None) -> list[int]:
    """The new tokens of a left-padded ``[pad.. prompt.. new..]`` sequence.

    Pipelines hand back whole sequences, padding included; the padding length is found as the
    position where the known prompt ids start after nothing but pad tokens.
    """
    sequence, prompt_ids = list(sequence), list(prompt_ids)
    start = 0
    while True:
        if sequence[start : start + len(prompt_ids)] == prompt_ids:
            return sequence[start + len(prompt_ids) :]
        if start < len(sequence) and sequence[start] == pad_token_id:
            start += 1
            continue
        raise RuntimeError("could not locate the prompt inside the generated sequence")
