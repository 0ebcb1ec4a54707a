"""The typed objects every part shares: Kratix objects (`objects`), pipeline outputs and
placements (`works`), what bookkeeping records (`records`). Pure data, no I/O."""
