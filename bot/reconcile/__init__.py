"""The engine (docs/reconciler.md): `engine.reconcile` drives one run; `decide` says why a
workflow runs; `phases`, `run`, `placements`, `writes`, `recording`, `pending` do the rest. It
takes its adapters (Runner, state-store writers, bookkeeping) as interfaces."""
