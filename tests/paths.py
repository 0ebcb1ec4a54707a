"""Where the tests find the repository and their own data, wherever a test module sits."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
GOLDEN = TESTS / "golden"
EXAMPLE_PLATFORM = ROOT / "config" / "examples" / "platform"
