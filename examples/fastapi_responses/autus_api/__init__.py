"""A FastAPI response cache like the one in the report: decorator, per-endpoint TTLs, pattern invalidation."""
