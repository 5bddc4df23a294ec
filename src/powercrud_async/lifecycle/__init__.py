"""A job's life: submitted, run, ended, reclaimed. Code here takes the manager as a
``protocol.Manager`` value and never imports the facades above it."""
