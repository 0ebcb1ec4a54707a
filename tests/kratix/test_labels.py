"""Labels are read as Kratix reads them: exactly "true" (K:lib/workflow/reconciler.go
`isLabelSetToTrue`, the pause checks of the Promise and request controllers)."""

from __future__ import annotations

import pytest

from bot.kratix.labels import DRY_RUN_LABEL, MANUAL_RECONCILIATION_LABEL, PAUSED_LABEL, is_true
from bot.model.objects import Destination, Source


@pytest.mark.parametrize("value,expected", [("true", True), ("True", False), ("TRUE", False), ("yes", False),
                                            ("false", False), ("", False), (" true", False)])
def test_only_the_exact_string_true_is_true(value, expected):
    assert is_true({PAUSED_LABEL: value}, PAUSED_LABEL) is expected
    assert is_true({MANUAL_RECONCILIATION_LABEL: value}, MANUAL_RECONCILIATION_LABEL) is expected


def test_a_missing_label_is_not_true():
    assert not is_true({}, PAUSED_LABEL)


def test_a_dry_run_destination_needs_exactly_true():
    def dest(value: str) -> Destination:
        labels = {DRY_RUN_LABEL: value}
        return Destination("d", {"metadata": {"name": "d", "labels": labels}}, Source("d.yaml"), labels, "d",
                           "GitStateStore", "s")

    assert dest("true").dry_run and not dest("True").dry_run
