"""Every Kratix and promisebot label and annotation name on platform objects, spelled once, and
how a "true" label is read (contract §1.3, §2, §4.7, §6). Pure constants, no imports.

Kratix compares a label with the exact string "true" wherever it reads one
(K:lib/workflow/reconciler.go `isLabelSetToTrue`, K:internal/controller/promise_controller.go
`shouldReconcileResources` and the pause check, K:internal/controller/
dynamic_resource_request_controller.go `reconcileIfPaused`, `isManualReconcile`,
K:api/v1alpha1/pipeline_factory.go for dry-run): `"True"` or `"yes"` is not true. `is_true`
does the same, everywhere promisebot reads such a label.
"""

from __future__ import annotations

from collections.abc import Mapping

# Kratix labels (K:lib/resourceutil/util.go, K:api/v1alpha1/work_types.go, promise_controller.go)
PROMISE_NAME_LABEL = "kratix.io/promise-name"  # on a request's object.yaml (§1.3)
PROMISE_VERSION_LABEL = "kratix.io/promise-version"  # a Promise's version, for requiredPromises (§4.6)
PAUSED_LABEL = "kratix.io/paused"  # no new workflow on the object, or on every request of a Promise (§4.7)
MANUAL_RECONCILIATION_LABEL = "kratix.io/manual-reconciliation"  # re-run the object's workflow (§4.7)
RECONCILE_RESOURCES_LABEL = "kratix.io/reconcile-resources"  # re-run every request of a Promise (§4.7)
DRY_RUN_LABEL = "kratix.io/dry-run"  # a Destination that never receives ordinary Works (§2.2)

# promisebot annotations
PIPELINE_TIMEOUT_ANNOTATION = "promisebot.io/pipeline-timeout"  # a Promise's pipeline timeout, a Go duration


def is_true(labels: Mapping[str, str], label: str) -> bool:
    """Whether `label` is set to exactly "true", as Kratix reads its labels."""
    return labels.get(label) == "true"
