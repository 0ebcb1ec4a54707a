"""Apply what was reviewed: a plan's pipeline results are saved and an apply of the same
inputs reuses them instead of running again (engine through the fake runner, real Git)."""

from __future__ import annotations

from fake_runner import FakeRunner
from reconcile_fixtures import one_request_platform, request

from bot.reconcile.engine import reconcile
from runners.saved import SavingRunner, dump_result, load_result

R1 = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"


class DictStore(dict):
    def put(self, key, data):
        self[key] = data


def test_apply_reuses_the_planned_results_and_writes_the_same_files(tmp_path):
    fake = FakeRunner()
    env = one_request_platform(tmp_path, runner=fake)
    store = DictStore()
    planner = SavingRunner(fake, store, record=True)
    plan = reconcile(env.platform, runner=planner, dry_run=True)
    planned = {d.path: d.new for b in plan.batches for d in b.diff}
    assert planner.ran == 1 and len(store) == 1

    # the pipeline would now produce something else: the apply must still write what was planned
    fake.outputs["redis"] = lambda job: {"thing.yaml": b"changed behind the reviewer's back\n"}
    applier = SavingRunner(fake, store, reuse=True)
    assert not reconcile(env.platform, runner=applier).errors
    assert applier.reused == 1 and applier.ran == 0
    assert env.files()[R1].encode() == planned[R1]


def test_changed_inputs_run_again(tmp_path):
    fake = FakeRunner()
    env = one_request_platform(tmp_path, runner=fake)
    store = DictStore()
    reconcile(env.platform, runner=SavingRunner(fake, store, record=True), dry_run=True)
    env.write("requests/r1.yaml", request("Redis", "r1", spec={"size": 3}))
    env.commit()
    applier = SavingRunner(fake, store, reuse=True)
    reconcile(env.platform, runner=applier)
    assert applier.ran == 1 and applier.reused == 0


def test_failed_results_are_not_saved_and_odd_data_is_ignored(tmp_path):
    fake = FakeRunner(failing={"redis"})
    env = one_request_platform(tmp_path, runner=fake)
    store = DictStore()
    reconcile(env.platform, runner=SavingRunner(fake, store, record=True), dry_run=True)
    assert store == {}
    assert load_result(b"not json") is None and load_result(b'{"format": 0}') is None


def test_a_result_survives_the_round_trip(tmp_path):
    fake = FakeRunner()
    env = one_request_platform(tmp_path, runner=fake)
    store = DictStore()
    reconcile(env.platform, runner=SavingRunner(fake, store, record=True), dry_run=True)
    (data,) = store.values()
    result = load_result(data)
    assert result is not None and dump_result(result) == data
