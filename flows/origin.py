"""Is the site there? A bounded TCP probe of the origin before a run fetches anything.

Without it, a run on a machine with no network would spend minutes on retries and end
with a pile of ``dns_error`` rows; with it, the run fails at once with one clear line
(the CLI exits 2 and points to ``make demo``), in deployments too.
"""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit


class OriginUnreachable(RuntimeError):
    """The origin did not accept a TCP connection within the bound."""

    def __init__(self, base_url: str, why: str) -> None:
        super().__init__(
            f"cannot reach {base_url} ({why}); this machine looks offline. "
            "Run `make demo` to try the pipeline on the bundled offline mirror."
        )
        self.base_url = base_url
        self.why = why


def probe_origin(base_url: str, timeout: float) -> str | None:
    """None if a TCP connection to the origin opens within ``timeout``, else why not."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except OSError as exc:
            outcome.append(exc.strerror or exc.__class__.__name__)

    t = threading.Thread(target=attempt, daemon=True)  # getaddrinfo has no timeout of its own
    t.start()
    t.join(timeout + 1)
    return outcome[0] if outcome else f"no answer within {timeout:.0f} s"


__all__ = ["OriginUnreachable", "probe_origin"]
