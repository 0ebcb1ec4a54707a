"""Kratix's contract as pure functions (docs/kratix-contract.md): status merge and conditions,
workload groups, scheduling, state-store layout, object.yaml, Go-compatible YAML and durations.
No I/O."""
