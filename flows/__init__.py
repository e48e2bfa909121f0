"""Prefect flows, their tasks and the ``baotintuc`` CLI."""

import warehouse  # noqa: F401  (first: it sets DuckDB's allocator up before DuckDB loads)
