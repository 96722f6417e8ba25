"""Our own redis-server for the Redis backend (started on a free port, never 6379)."""
