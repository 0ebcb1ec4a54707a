"""The warm pool of Kubernetes API sidecars (runners/sidecar.py) on a real Docker engine: a
sidecar serves one run and is removed with it, a spare is warming for the next, a spare that
died is not used, closing stdin stops one, `drain` removes what no run took, and a pipeline
run through the runner uses the spare."""

from __future__ import annotations

import os
import socket
import time

import docker
import pytest
from runner_fixtures import PYTHON, leftovers, pipeline, promise, request, settings, sh
from waiting import wait_for

from bot.kube.pki import RunCredentials
from runners import kubeapi
from runners.docker import DockerRunner
from runners.sidecar import SIDECAR_MEMORY, KubeApiError, SidecarPool, SidecarSpec
from runners.workflow import run_workflow

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("images")]

OWNER = f"{socket.gethostname()}:{os.getpid()}"


@pytest.fixture
def pool():
    p = SidecarPool(docker.from_env().api, OWNER)
    yield p
    p.drain()
    assert not p._owned and not p._warm.get(spec())  # nothing not handed out is left
    for name in pool_containers(p):  # those handed out (a runner removes them with their run)
        docker.from_env().api.remove_container(name, force=True)


def pool_containers(p: SidecarPool) -> list[str]:
    label = {"label": f"promisebot.session={p.labels['promisebot.session']}"}
    return sorted(c.name for c in docker.from_env().containers.list(all=True, filters=label))


def state(name: str) -> dict:
    return docker.from_env().api.inspect_container(name)["State"]


def make_run() -> dict:
    env = [("KRATIX_WORKFLOW_TYPE", "resource"), ("KRATIX_OBJECT_GROUP", "example.io"),
           ("KRATIX_OBJECT_VERSION", "v1"), ("KRATIX_CRD_PLURAL", "webs"), ("KRATIX_OBJECT_KIND", "Web"),
           ("KRATIX_OBJECT_NAMESPACE", "team-a")]
    obj = {"apiVersion": "example.io/v1", "kind": "Web", "metadata": {"name": "shop", "namespace": "team-a"}}
    return kubeapi.build_run(obj, env, "p", [], "web-resource-configure-p", None)


def spec(network: str = "none") -> SidecarSpec:
    return SidecarSpec(PYTHON, network, SIDECAR_MEMORY)


def warm(p: SidecarPool, s: SidecarSpec) -> list[str]:
    with p._lock:
        return [w.name for w in p._warm.get(s, [])]


def test_one_run_per_sidecar_and_a_spare_for_the_next(pool):
    taken: list[str] = []
    first = pool.claim(spec(), taken.append)
    assert not first.warm and taken == [first.name]
    assert not pool._warming  # nothing warms until the run asks (its first container started)
    pool.replenish(spec(), 1)
    pool.replenish(spec(), 1)  # one is enough: one is starting
    spare = wait_for(lambda: warm(pool, spec()), 30, "a warm spare")[0]
    assert state(spare)["Running"] and spare != first.name
    second = pool.claim(spec(), taken.append)
    assert second.warm and second.name == spare and taken == [first.name, spare]
    pool.replenish(spec(), 1)
    for sidecar in (first, second):
        sidecar.configure(RunCredentials.new(), make_run(), time.monotonic() + 30)
        assert sidecar.finish(time.monotonic() + 10) is None  # nothing written through its API
        wait_for(lambda s=sidecar: not state(s.name)["Running"], 10, "the sidecar to stop")  # stdin closed: it stops
        assert state(sidecar.name)["ExitCode"] == 0
    assert first.name not in warm(pool, spec()) and spare not in warm(pool, spec())  # never handed out again
    wait_for(lambda: warm(pool, spec()), 30, "the next spare")
    assert set(pool_containers(pool)) == {*taken, *warm(pool, spec())}


def test_a_spare_that_died_is_not_used(pool):
    pool.claim(spec(), lambda name: None).close()
    pool.replenish(spec(), 1)
    spare = wait_for(lambda: warm(pool, spec()), 30, "a warm spare")[0]
    docker.from_env().api.kill(spare)
    wait_for(lambda: not state(spare)["Running"], 10, "the killed spare to stop")
    sidecar = pool.claim(spec(), lambda name: None)
    assert sidecar.name != spare and not sidecar.warm
    sidecar.configure(RunCredentials.new(), make_run(), time.monotonic() + 30)
    sidecar.close()
    wait_for(lambda: spare not in pool_containers(pool), 10, "the dead spare to be removed")  # removed in the background


def test_an_image_without_python_fails_clearly_and_leaves_nothing(pool):
    broken = SidecarSpec("promisebot/busybox:latest", "none", SIDECAR_MEMORY)
    taken: list[str] = []
    sidecar = pool.claim(broken, taken.append)
    pool.replenish(broken, 1)
    with pytest.raises(KubeApiError, match=r"runner.kubernetesApi.image\) cannot start"):
        sidecar.configure(RunCredentials.new(), make_run(), time.monotonic() + 30)
    wait_for(lambda: not pool._warming, 30, "the failed spare")  # the spare it tried to warm failed too
    assert pool_containers(pool) == taken and warm(pool, broken) == []  # only the run's, for it to remove


def test_drain_removes_spares_and_those_still_starting(pool):
    pool.claim(spec("bridge"), lambda name: None).close()
    pool.replenish(spec("bridge"), 2)
    pool.drain()  # waits for the two spares being started, then removes them
    assert warm(pool, spec("bridge")) == [] and not pool._owned
    assert len(pool_containers(pool)) == 1  # only the one handed out


def test_a_pipeline_joins_the_spare_of_the_process_pool():
    """Through the runner: the second run's containers share the network namespace (and so the
    hostname) of the sidecar that was warming while the first ran (from its container's start);
    both are removed with their runs."""
    runner = DockerRunner()
    who = sh("who", "hostname > /kratix/metadata/host")
    pr = promise(workflows={("resource", "configure"): [pipeline("p", who)]})
    req = request()
    s = settings()
    first = run_workflow(runner, pr, req.body, "resource", "configure", s, request=req)
    assert first.succeeded, first.error
    process_pool = runner.sidecars
    key = SidecarSpec(s.kube_api_image, s.network, min(s.memory_bytes, SIDECAR_MEMORY))
    spare = wait_for(lambda: warm(process_pool, key), 30, "the process pool's spare")[0]
    hostname = docker.from_env().api.inspect_container(spare)["Config"]["Hostname"]
    second = run_workflow(runner, pr, req.body, "resource", "configure", s, request=req)
    assert second.succeeded, second.error
    assert second.pipelines[0].metadata_files["host"].decode().strip() == hostname
    runner.close()
    assert leftovers(runner.session) == []
    assert spare not in {c.name for c in docker.from_env().containers.list(all=True)}


def test_a_one_job_process_keeps_spares_from_its_second_run():
    """An rq work horse (`one_job_process`): a job with one pipeline warms nothing it would
    throw away; from the second run on, spares are kept as usual."""
    p = SidecarPool(docker.from_env().api, OWNER, spares_from=2)
    try:
        p.claim(spec(), lambda name: None).close()
        p.replenish(spec(), 1)
        assert not p._warming and warm(p, spec()) == []
        p.claim(spec(), lambda name: None).close()
        p.replenish(spec(), 1)
        wait_for(lambda: warm(p, spec()), 30, "a spare after the second run")
    finally:
        p.drain()
        for name in pool_containers(p):
            docker.from_env().api.remove_container(name, force=True)
