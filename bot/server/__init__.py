"""`promisebot serve`: the webhook receiver (flask), its configuration and its metrics. The
request path verifies, parses, de-duplicates and enqueues; all work happens in bot/jobs."""
