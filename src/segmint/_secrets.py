"""Secrets never leave memory: one redaction for everything segmint writes or logs, and
database URLs that name environment variables instead of holding passwords.

:func:`redact` masks, in any text: the password of a URL (``user:secret@host``), query
parameters that carry credentials (``?password=...``, ``token=``, ``api_key=``, ``secret=``,
``sslpassword=`` ...), and ``key=value`` / ``key: value`` pairs of the same names.
:func:`redact_obj` applies it to every string inside dicts and lists (a spec, a manifest).
:func:`expand_env` fills ``${NAME}`` in a URL from the environment at the moment of
connecting, so a spec can say ``postgresql://analyst:${PGPASSWORD}@db/crm`` and the password is
never in a file.
"""
from __future__ import annotations

import logging
import os
import re
from typing import Any

__all__ = ["MASK", "redact", "redact_obj", "expand_env", "RedactingFilter"]

MASK = "***"

#: Names of parameters whose values are credentials (case-insensitive).
_SECRET_KEYS = r"(?:password|passwd|pwd|pass|secret|token|access_token|auth_token|api_key|apikey|" \
               r"sslpassword|client_secret|private_key|credentials?)"

# scheme://user:password@host -> scheme://user:***@host (the user name is kept)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@?#]*:)(?P<secret>[^\s@/?#]*)(?=@)")
# ?password=secret&... or ;password=secret or password: secret
_KEY_VALUE = re.compile(
    rf"(?P<head>(?<![A-Za-z0-9_]){_SECRET_KEYS}['\"]?\s*(?:=|:)\s*['\"]?)(?P<secret>[^\s&;,'\"}}\]]+)",
    re.IGNORECASE)
_ENV = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEY = re.compile(_SECRET_KEYS, re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every credential masked.

    Examples
    --------
    >>> redact("postgresql+psycopg://analyst:s3cr%40t@db:5432/crm")
    'postgresql+psycopg://analyst:***@db:5432/crm'
    >>> redact("postgresql://db/crm?user=a&password=secret&sslmode=require")
    'postgresql://db/crm?user=a&password=***&sslmode=require'
    >>> redact("connect failed: token: abc123, retry")
    'connect failed: token: ***, retry'
    >>> redact("{'password': 'hunter2', 'host': 'db'}")
    "{'password': '***', 'host': 'db'}"
    >>> redact("postgresql://analyst:${PGPASSWORD}@db/crm")  # a reference is no secret
    'postgresql://analyst:${PGPASSWORD}@db/crm'
    """
    if not text:
        return text

    def mask(match: re.Match[str]) -> str:
        secret = match.group("secret")
        if _ENV.fullmatch(secret) or secret == MASK:
            return match.group(0)
        return match.group("head") + MASK

    return _KEY_VALUE.sub(mask, _URL_PASSWORD.sub(mask, text))


def redact_obj(obj: Any) -> Any:
    """Every string inside ``obj`` (dicts, lists, tuples; keys too) redacted, and the value of
    a key that names a credential masked whole; the rest as is.

    Examples
    --------
    >>> redact_obj({"url": "postgresql://a:b@h/d", "password": "hunter2", "n": 3})
    {'url': 'postgresql://a:***@h/d', 'password': '***', 'n': 3}
    """
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): (MASK if isinstance(k, str) and _SECRET_KEY.fullmatch(k)
                                and isinstance(v, str) and v and not _ENV.fullmatch(v)
                                else redact_obj(v))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj


def expand_env(url: str, *, what: str = "source.url") -> str:
    """``url`` with each ``${NAME}`` replaced by the environment variable NAME.

    Raises ``KeyError`` naming the variable when it is not set (callers turn it into their own
    error; the message holds the name, never a value).

    Examples
    --------
    >>> os.environ["SEGMINT_DOCTEST_PW"] = "pw"
    >>> expand_env("postgresql://a:${SEGMINT_DOCTEST_PW}@db/crm")
    'postgresql://a:pw@db/crm'
    """
    def value(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in os.environ:
            raise KeyError(f"{what} names the environment variable {name}, which is not set")
        return os.environ[name]

    return _ENV.sub(value, url)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message (:func:`redact`); drops nothing.

    Put it on a *handler*: a filter on a logger sees only the records logged on that very
    logger, not those of its children (``segmint.io._readers``), while a handler's filters see
    every record the handler writes. The ``segmint`` command installs it on its handlers; with
    your own logging setup, add it to yours::

        handler.addFilter(segmint.RedactingFilter())

    Examples
    --------
    >>> record = logging.LogRecord("segmint.io", logging.INFO, __file__, 1, "read %d rows from %s",
    ...                            (3, "postgresql://ana:hunter2@db/crm"), None)
    >>> RedactingFilter().filter(record), record.getMessage()
    (True, 'read 3 rows from postgresql://ana:***@db/crm')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        # Format once, redact, and keep the result: handlers after this one see only the mask.
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:  # formatters reuse a cached exc_text
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
