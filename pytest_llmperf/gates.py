"""Gates: thresholds checked against a ``RunResult``. Each check returns a small ``GateResult``;
``GateReport.failure_text`` is the readable failure a test shows (measured vs required, and for
output drift the worst samples with the token where they first diverge)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Thresholds
from .results import RunResult

WORST_SAMPLES = 3
PREVIEW_CHARS = 160


@dataclass(frozen=True)
class GateResult:
    name: str  # the option, e.g. min_exact_match
    label: str
    measured: float | None
    required: float
    passed: bool
    note: str = ""

    def line(self) -> str:
        if self.passed and self.measured is None:
            return f"{self.label}: not checked ({self.note})"
        measured = "not measured" if self.measured is None else f"{self.measured:.4g}"
        verdict = ">=" if self.passed else "<"
        text = f"{self.label}: {measured} {verdict} required {self.required:g}"
        return f"{text} ({self.note})" if self.note else text


@dataclass(frozen=True)
class GateReport:
    result: RunResult
    gates: tuple[GateResult, ...]

    @property
    def failures(self) -> list[GateResult]:
        return [gate for gate in self.gates if not gate.passed]

    @property
    def passed(self) -> bool:
        return not self.failures

    def failure_text(self, baseline, prompts, tokenizer) -> str:
        """``baseline``: the bs=1 ``Generations``; ``prompts``: the raw prompts, in workload order."""
        result = self.result
        lines = [f"llmperf gate failed: {result.label} on {result.spec.model} ({result.device})"]
        lines += [f"  {gate.line()}" for gate in self.failures]
        if any(gate.name in OUTPUT_GATES for gate in self.failures):
            lines += _worst_samples(result, baseline, prompts, tokenizer)
        return "\n".join(lines)


OUTPUT_GATES = ("min_exact_match", "min_similarity")
NOT_TIMED = "timing is disabled: --benchmark-disable, or pytest-benchmark disabled itself under xdist"


def check(result: RunResult, thresholds: Thresholds, *, outputs: bool, throughput: bool) -> GateReport:
    gates: list[GateResult] = []
    consistency = result.consistency
    if outputs and thresholds.min_exact_match is not None:
        identical = sum(sample.exact for sample in consistency.samples)
        gates.append(_at_least("min_exact_match", "exact match to bs=1", consistency.exact_match,
                               thresholds.min_exact_match, f"{identical}/{result.num_samples} samples identical"))
    if outputs and thresholds.min_similarity is not None:
        gates.append(_at_least("min_similarity", "mean similarity to bs=1", consistency.similarity,
                               thresholds.min_similarity))
    floors = {"min_tokens_per_s": thresholds.min_tokens_per_s, "min_samples_per_s": thresholds.min_samples_per_s,
              "min_speedup": thresholds.min_speedup if result.batch_size > 1 else None}
    if throughput and result.timing is None:  # --benchmark-disable, or pytest-benchmark off under xdist
        for name, required in floors.items():
            if required is not None:
                gates.append(GateResult(name, name.removeprefix("min_").replace("_", " "), None, required, True,
                                        NOT_TIMED))
    if throughput and result.timing is not None:
        if thresholds.min_tokens_per_s is not None:
            gates.append(_at_least("min_tokens_per_s", "tokens/s", result.tokens_per_s, thresholds.min_tokens_per_s))
        if thresholds.min_samples_per_s is not None:
            gates.append(_at_least("min_samples_per_s", "samples/s", result.samples_per_s,
                                   thresholds.min_samples_per_s))
        if thresholds.min_speedup is not None and result.batch_size > 1:
            note = "" if result.speedup_vs_bs1 is not None else (
                f"no timed bs=1 run of {result.strategy} for this configuration before this test in this session; "
                "include batch size 1"
            )
            gates.append(_at_least("min_speedup", "speedup vs bs=1", result.speedup_vs_bs1, thresholds.min_speedup,
                                   note))
    return GateReport(result, tuple(gates))


def _at_least(name: str, label: str, measured: float | None, required: float, note: str = "") -> GateResult:
    return GateResult(name, label, measured, required, measured is not None and measured >= required, note)


def _worst_samples(result: RunResult, baseline, prompts, tokenizer) -> list[str]:
    worst = result.consistency.worst(WORST_SAMPLES)
    if not worst:
        return []
    baseline_label, run_label = "bs=1", f"bs={result.batch_size}"
    lines = [f"  worst samples ({run_label} {result.strategy} vs the {baseline_label} baseline):"]
    for diff in worst:
        got = result.generations.samples[diff.index]
        want = baseline.samples[diff.index]
        position = diff.diverges_at
        lines.append(f"  - sample {diff.index}: similarity {diff.similarity:.2f}, first diverges at generated "
                     f"token {position}: {_token(tokenizer, want.token_ids, position)} ({baseline_label}) vs "
                     f"{_token(tokenizer, got.token_ids, position)} ({run_label})")
        lines.append(f"      prompt: {_preview(prompts[diff.index])}")
        lines.append(f"      {baseline_label}: {_preview(want.text)}")
        lines.append(f"      {run_label}: {_preview(got.text)}")
    return lines


def _token(tokenizer, ids, position) -> str:
    if position is None or position >= len(ids):
        return "<end>"
    return repr(tokenizer.decode([ids[position]]))


def _preview(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 3] + "...")
