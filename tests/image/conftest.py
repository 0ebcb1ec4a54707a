"""Fixtures of the image and compose tests (tests/image/image_fixtures.py)."""

from image_fixtures import deploy_images

__all__ = ["deploy_images"]
