"""Where the tests find the repository and their own data, wherever a test module sits; and
write_files, which lays out a tree of files for a test."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
FIXTURES = TESTS / "fixtures"
GOLDEN = TESTS / "golden"
EXAMPLE_PLATFORM = ROOT / "config" / "examples" / "platform"


def write_files(root: Path, files: dict[str, str]) -> Path:
    """Write each text at its path (relative to `root`), making folders; returns `root`."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
