"""What promisebot remembers between runs: the `promisebot/state` branch (`bookkeeping`)."""
