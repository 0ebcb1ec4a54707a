"""Every error promisebot raises on purpose derives from one base, which front ends catch."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import bot
import runners
from bot.errors import PromisebotError

DELIBERATELY_OUTSIDE = {
    "runners.pool.Terminated",  # a BaseException: unwinds like KeyboardInterrupt
    "bot.jobs.locks.LockBusy",  # not an error: the queue puts the job back (no handler may report it)
    # bot/kube's API runs in a pipeline run's sidecar, standard library only (no bot.errors there);
    # its errors become Kubernetes Status responses and never reach a promisebot front end.
    "bot.kube.api.ApiError",
    "bot.kube.patch.PatchError",
    "bot.kube.table.TableError",
}
ENTRY_POINTS = {"bot.server.wsgi"}  # builds the app from the environment when imported, by design


def all_modules():
    for package in (bot, runners):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name not in ENTRY_POINTS:
                yield importlib.import_module(info.name)


def test_every_error_class_derives_from_the_base():
    found = []
    for module in all_modules():
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                qualified = f"{module.__name__}.{name}"
                found.append(qualified)
                if qualified not in DELIBERATELY_OUTSIDE:
                    assert issubclass(obj, PromisebotError), f"{qualified} does not derive from PromisebotError"
    assert len(found) >= 10  # the walk really saw the error classes


def test_the_cli_reports_a_promisebot_error_without_a_traceback(tmp_path):
    import subprocess
    import sys

    from paths import ROOT
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".promisebot.yaml").write_text("stateBranch: main\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=a", "-c", "user.email=a@a", "commit", "-qm", "x"],
                   check=True)
    out = subprocess.run([sys.executable, "-m", "bot.cli", "reconcile", "--platform", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "stateBranch" in out.stderr
