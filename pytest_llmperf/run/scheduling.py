"""``--dist loadgroup`` that keeps a model configuration's tests on one worker, with any pytest.

pytest-xdist's loadgroup finds a test's ``xdist_group`` in a ``@group`` suffix that its workers append
to the node id; since pytest 9.2's structured node ids that suffix no longer takes effect, and
loadgroup silently stops grouping (pytest-xdist#1386). A perf test's node id names its model
configuration (``test_throughput[sdpa-nocompile-float32-manual-bs16]``), so the controller reads the
group from there: the same ``llmperf-<configuration>`` group the test's ``xdist_group`` marker names.
Imported only on an xdist controller.
"""

from __future__ import annotations

from xdist.scheduler import LoadGroupScheduling

from .parametrize import nodeid_group


class ConfigurationGroups(LoadGroupScheduling):
    """xdist's loadgroup scheduling, whose scope of a perf test is its model configuration."""

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.rfind("@") > nodeid.rfind("]"):  # xdist's own suffix took effect (pytest < 9.2)
            return super()._split_scope(nodeid)
        return nodeid_group(nodeid) or nodeid
