"""A plain HTTP GET for gam's own clients of its API (the reference consumer fetching
keys, the witness following the transparency log), with the standard library only,
so those clients need nothing the server does not.

Every answer is an answer, an error status too (a 404 or a 410 says something); only
a server that cannot be reached raises (``OSError``), for each caller to name in its
own terms.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping


def http_get(url: str, headers: Mapping[str, str], timeout: float) -> tuple[int, bytes]:
    """The status and body of ``GET url``; the caller has checked that ``url`` is http(s)."""
    request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 - checked by the caller
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - checked by the caller
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()
