"""A Django hybrid cache like the one in the report: per-user namespace versions invalidated by INCR."""
