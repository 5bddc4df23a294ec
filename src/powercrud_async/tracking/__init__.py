"""Lifecycle records: how ``ModelTrackingAsyncManager`` turns events into rows of a model the
project owns (field map, column changes, buffered writes, repair at cleanup, pruning)."""
