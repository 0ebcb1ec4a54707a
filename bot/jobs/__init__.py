"""The bot's work, the same whether it runs in an rq worker, a thread of `promisebot serve` or a
CI job: the platform repo cached per machine (`repos`), saved plan results (`plans`), the
cross-worker reconcile lock (`locks`), the queue (`queue`) and the job functions (`handlers`),
which call the same engine as the CLI."""
