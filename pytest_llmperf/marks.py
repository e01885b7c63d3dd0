"""The ``llmperf`` marker: per-test overrides of the axes and thresholds.

    @pytest.mark.llmperf(batch_sizes=[1, 8], strategies=["pipeline"], min_speedup=1.5)

Markers on the module/class/function merge, the closest winning. Unknown keywords are rejected
with a one-line error naming the valid ones (``Settings.for_test``).
"""

from __future__ import annotations

MARKER = "llmperf"
MARKER_HELP = (
    "llmperf(**overrides): per-test llmperf settings: batch_sizes, strategies, attn_implementations, "
    "compile_modes, dtypes, quantizations, speculative, min_tokens_per_s, min_samples_per_s, min_speedup, "
    "min_roofline, max_memory_mb, max_ttft_ms, max_itl_ms, max_e2e_ms, latency_percentile, min_exact_match, "
    "min_similarity, min_match_unquantized, min_match_non_speculative, tolerance, min_baseline_match, "
    "tolerate_near_ties"
)


def marker_kwargs(node) -> dict | None:
    """The merged keywords of every llmperf marker on ``node`` (closest wins), or None when unmarked.

    ``node`` is a test item or a ``Metafunc.definition``; both support ``iter_markers``.
    """
    markers = list(node.iter_markers(MARKER))
    if not markers:
        return None
    merged: dict = {}
    for marker in reversed(markers):  # farthest first, so the closest overrides
        if marker.args:
            raise ValueError("the llmperf marker takes keyword arguments only, e.g. llmperf(batch_sizes=[1, 8])")
        merged.update(marker.kwargs)
    return merged
