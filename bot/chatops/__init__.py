"""ChatOps: commands in pull/merge request comments, and who may run them.

Pure modules, no I/O (the job functions fetch the facts and post the replies):

- `grammar`: a comment body into `Command`s and `Problem`s (`parse`);
- `policy`: the `commands`, `destinations`, `apply` and `plan` sections of `.promisebot.yaml`
  (`load_policy`, `authorize`);
- `requirements`: which apply requirements a change does not meet yet (`unmet`, `check_apply`);
- `replies`: the markdown of the bot's replies, each starting with `REPLY_MARKER`.
"""
