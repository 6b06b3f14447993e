"""The lab: a per-user service that owns the queue, the workers and the runs of one folder."""
