"""Fixtures shared by the test modules, and the markers that select them.

Markers: `docker` (needs a Docker engine and the locally built images), `s3` (starts the
SeaweedFS S3 server). Redis (`redis_server`) is a real `redis-server` per test. `pytest -m "not docker and not s3"` runs the fast subset: the engine
through the fake runner (tests/fake_runner.py), real Git repositories, everything pure.
"""

from __future__ import annotations

from example_fixtures import example_fixture
from redis_server import redis_fixture
from runner_fixtures import images, runner
from s3_server import s3_fixture

__all__ = ["example_fixture", "images", "redis_fixture", "runner", "s3_fixture"]
