"""`promisebot ci`: the bot's jobs run in the foreground of a CI job (GitHub Actions, GitLab CI)
instead of behind a webhook (docs/ci.md). `env` reads the run's event from the CI variables
(pure), `mode` decides what to run, `journal` records what the job told the forge, `outcome`
and `summary` turn that into the exit code, the job summary and the step outputs, `services`
builds the job's configuration and services from the environment."""
