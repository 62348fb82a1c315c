"""Work that runs on Ray outside a request: the job dispatcher and task (ingest, async schedule, webhooks)
and batch re-embedding over Ray Data."""
