"""Checking that a webhook really comes from Twilio (``X-Twilio-Signature``).

Twilio signs the URL *it* requested, not the one our listener sees: behind a reverse proxy
the scheme, host, port and path prefix differ. So the URL is rebuilt from ``public_url`` (what
Twilio was told) plus the path and query the request carried; ``public_url`` must therefore be
exactly the ``https://host[:port][/prefix]`` Twilio calls.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from urllib.parse import urlparse

from twilio.request_validator import RequestValidator, add_port, remove_port


def signed_url(public_url: str, path: str, query_string: str = "") -> str:
    """The URL Twilio signed: ``{public_url}{path}`` plus ``?query`` when there is one."""
    url = public_url.rstrip("/") + "/" + path.lstrip("/")
    return f"{url}?{query_string}" if query_string else url


def signature_valid(
    auth_token: str,
    url: str,
    params: Iterable[tuple[str, str]],
    signature: str | None,
) -> bool:
    """Whether ``signature`` is Twilio's for this URL and these form fields.

    Twilio's RequestValidator computes the signature; the comparison is done here with
    :func:`hmac.compare_digest` so that it takes the same time whatever the signature. As
    Twilio does, the URL is tried both with and without the default port.
    """
    if not signature:
        return False
    fields: dict[str, list[str]] = {}
    for name, value in params:
        fields.setdefault(name, []).append(value)
    validator = RequestValidator(auth_token)
    parsed = urlparse(url)
    candidates = [
        validator.compute_signature(candidate, _MultiDict(fields))
        for candidate in (remove_port(parsed), add_port(parsed))
    ]
    # Undecodable header bytes arrive as surrogates; escaped, they can only mismatch (base64
    # signatures hold no backslash).
    given = signature.encode("utf-8", "backslashreplace")
    return any(hmac.compare_digest(candidate.encode(), given) for candidate in candidates)


class _MultiDict(dict[str, list[str]]):
    """Form fields with repeated names, in the shape RequestValidator reads (``getall``)."""

    def getall(self, name: str) -> list[str]:
        return self[name]
