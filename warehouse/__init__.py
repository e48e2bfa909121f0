"""The DuckDB warehouse: schema, loads, search, reports.

Importing the package sets the options of DuckDB's allocator, which DuckDB reads once,
when it is first imported; so every module of the project that uses DuckDB is imported
through this package (``flows`` imports it first too). DuckDB allocates through its own
jemalloc, which by default keeps freed pages for 10 s before giving them back. A segment
load during a crawl frees what its insert used just before its checkpoint needs new
memory, so the two added up: purging at once took the peak of a 4,000-article backfill
(all processes) from 400-404 MB in five runs to 390-398 in four, at the same CPU time,
with no change at 1,000 articles (``docs/architecture.md``). Set ``DUCKDB_JE_MALLOC_CONF``
yourself to choose otherwise (``""`` for DuckDB's defaults).
"""

import os

DUCKDB_ALLOCATOR_ENV = "DUCKDB_JE_MALLOC_CONF"
DUCKDB_ALLOCATOR_CONF = "dirty_decay_ms:0,muzzy_decay_ms:0"

os.environ.setdefault(DUCKDB_ALLOCATOR_ENV, DUCKDB_ALLOCATOR_CONF)
