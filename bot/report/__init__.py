"""What a report says, in one place: the presentation logic the CLI (`promisebot plan`,
`promisebot reconcile`) and the bot's PR/MR comments (bot/forges/comment.py) share.

- `outcomes`: workflow runs, failures (pipeline, container, reason, log tail), invalid objects,
  refused placements, and whether a run needs attention;
- `diffs`: one file's unified diff, which Destination a store path belongs to, the files of a
  state store grouped per Destination with their add/modify/remove counts, and the masking of
  Kubernetes `Secret` values before a diff is shown anywhere it is published.
"""
