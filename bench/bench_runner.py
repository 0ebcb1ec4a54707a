"""Runner overhead per pipeline, as a ratio to a bare `docker run --rm` of the same image and
command, both measured in this run (median of N repetitions). Target: at most 1.3x.

The runner runs with the default settings, so each run has its Kubernetes API (a sidecar taken
from the process's warm pool, runners/sidecar.py); `--no-kube-api` measures it without.

    .venv/bin/python bench/bench_runner.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bot.model.objects import Container, Pipeline, Source
from bot.settings import load_settings
from runners.base import PipelineJob
from runners.docker import DockerRunner

IMAGE = "promisebot/busybox:latest"
SCRIPT = "echo hello > /tmp/hello.yaml; cat /tmp/hello.yaml"
TARGET = 1.3


def bare() -> float:
    start = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", IMAGE, "sh", "-c", SCRIPT], check=True, capture_output=True)
    return time.perf_counter() - start


def runner_once(runner: DockerRunner, job: PipelineJob) -> tuple[float, float]:
    """(seconds until the result is back, seconds until its containers and volumes are gone).
    The runner removes them off the result's critical path; waiting for that here keeps the
    removal out of the next bare run's timing."""
    start = time.perf_counter()
    result = runner.run(job)
    to_result = time.perf_counter() - start
    runner.close()
    with_cleanup = time.perf_counter() - start
    # The replacement warm sidecar starts in the background; the bare run must not pay for it.
    runner.sidecars.settle()
    if not result.succeeded:
        raise SystemExit(f"pipeline failed: {result.error}")
    return to_result, with_cleanup


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-kube-api", action="store_true", help="runner.kubernetesApi.enabled: false")
    args = parser.parse_args()
    subprocess.run([str(Path(__file__).resolve().parent.parent / "scripts" / "build-images.sh")], check=True,
                   capture_output=True)
    settings = load_settings({"runner": {"kubernetesApi": {"enabled": False}}} if args.no_kube_api else None).runner
    pipeline = Pipeline("bench", [Container("c", IMAGE, command=["sh", "-c"], args=[SCRIPT],
                                            image_pull_policy="Never")], {}, Source("bench"))
    job = PipelineJob(pipeline, "resource", "configure", {"metadata": {"name": "bench"}, "spec": {}},
                      [("KRATIX_WORKFLOW_ACTION", "configure")], settings)
    runner = DockerRunner()
    bare(), runner_once(runner, job)  # warm up both paths
    bares, runs, fulls = [], [], []
    for _ in range(args.repeat):  # interleaved so engine load drifts affect both alike
        bares.append(bare())
        to_result, with_cleanup = runner_once(runner, job)
        runs.append(to_result)
        fulls.append(with_cleanup)
    b, r, f = statistics.median(bares), statistics.median(runs), statistics.median(fulls)
    ratio = r / b
    print(f"bare docker run --rm : median {b * 1000:7.1f} ms over {args.repeat}")
    print(f"promisebot runner    : median {r * 1000:7.1f} ms to the result "
          "(volumes, object.yaml in, container, output+metadata out)")
    print(f"                       median {f * 1000:7.1f} ms until its containers and volumes are removed")
    print(f"ratio {ratio:.2f}x to the result (target <= {TARGET}x): {'OK' if ratio <= TARGET else 'OVER TARGET'}; "
          f"{f / b:.2f}x including removal")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
