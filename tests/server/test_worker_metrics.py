"""A worker's jobs run in child processes (rq's work horses): their metrics must still reach the
worker's /metrics (prometheus_client's multiprocess mode, set up by `promisebot worker
--metrics-port`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from paths import ROOT


def test_metrics_recorded_in_a_child_process_are_exposed(tmp_path):
    script = textwrap.dedent(f"""
        import os
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = {str(tmp_path)!r}
        from bot.server import metrics
        pid = os.fork()
        if pid == 0:  # a work horse
            metrics.JOB_SECONDS.labels(kind="push", stage="total").observe(1.5)
            metrics.count_forge_call("github", 201)
            os._exit(0)
        os.waitpid(pid, 0)
        print(metrics.exposition().decode())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert 'promisebot_job_seconds_count{kind="push",stage="total"} 1.0' in out
    assert 'promisebot_forge_api_calls_total{code="201",forge="github"} 1.0' in out
