"""Shared pytest set-up. Each fixture family lives in its own module under tests/fixtures/."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The package lives beside the panel's executables, as on a host.
if str(REPO / "addon") not in sys.path:
    sys.path.insert(0, str(REPO / "addon"))

pytest_plugins = [
    "tests.fixtures.mgr5",
    "tests.fixtures.database",
    "tests.fixtures.emulator",
]
