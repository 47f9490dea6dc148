"""Hiding secrets in text that may be logged, printed or answered.

Two kinds of secret reach text by accident. Secrets with a recognisable place: the
password in a URL's userinfo (``postgresql://user:pw@host/db``, ``redis://:pw@host``)
and key-like query parameters (``?apikey=…``, ``&token=…``, ``?password=…``); ``redact``
hides those wherever they stand in a text. And secrets that could stand anywhere (a
vendor quoting back the key it was sent): ``hide`` replaces the known values themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MASK", "hide", "redact"]

MASK = "***"

#: ``scheme://user:password@``: the password runs to the last ``@`` before the path (an
#: unencoded ``@`` in a password is read the way ``urllib.parse`` reads it).
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/?#@\s]*:)[^/?#\s]*@")
#: Query parameters that carry a key or a password, in a URL or a logged query string
#: (no word boundary in front: ``access_token=`` and ``X-Api-Key=`` are caught too).
_SECRET_PARAMS = re.compile(r"(?i)(api[_-]?key|apikey|token|secret|key|password|passwd|pwd)=[^&\s\"']*")
#: A known secret cut off at the end of a text (messages quote bodies up to a length)
#: still hides when at least this much of it is left.
_MIN_TAIL = 4


def redact(text: str) -> str:
    """``text`` with URL passwords and key-like query parameter values replaced by ``***``.

    ``postgresql://mds:pw@db/mds`` becomes ``postgresql://mds:***@db/mds``; a user name
    alone is no secret and stays. Anything else is returned unchanged.
    """
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", text)
    return _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}={MASK}", text)


def hide(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` replaced by ``***``, wherever it stands.

    A text that ends in the first part of a secret (a quoted body cut at its length
    limit) has that part hidden too. Secrets shorter than four characters are left
    alone: hiding them would mangle ordinary words and show nothing worth hiding.
    """
    for secret in sorted((s for s in secrets if len(s) >= _MIN_TAIL), key=len, reverse=True):
        text = text.replace(secret, MASK)
        for cut in range(len(secret) - 1, _MIN_TAIL - 1, -1):
            if text.endswith(secret[:cut]):
                text = text[:-cut] + MASK
                break
    return text
