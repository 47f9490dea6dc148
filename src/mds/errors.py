"""Every error MDS raises on purpose, in one tree.

    MdsError
    ├── ConfigError(setting)                 invalid or unknown setting
    ├── ProviderError(provider, code)        a vendor call failed; raised only by adapters
    │   ├── AuthError                        401/403, bad or missing key
    │   ├── NotEntitled                      the key's plan does not include this endpoint
    │   ├── RateLimited(retry_after)         429 or a throttling body; back off, not a health failure
    │   ├── NoData                           the vendor answered, with nothing for the request
    │   ├── BadPayload                       unparsable or inconsistent body; never stored
    │   └── Unavailable                      5xx, timeout, connection refused, outage
    ├── NoProviderAvailable(capability, errors)  every provider in the policy failed or was skipped
    ├── StorageError                         the store could not read or write
    ├── QueueError                           a job queue could not take or give a job
    ├── InvalidJob(reason)                   a job failed its schema; goes to the DLQ
    ├── InvalidRequest(field, message)       a caller's parameter is wrong; 422 naming the field
    ├── Conflict(kind, key)                  it exists already and may not be replaced (immutable history); 409
    └── NotFound(kind, key)                  unknown symbol, job, cursor ...

Adapters translate vendor and transport failures into ProviderError subclasses; the
API translates MdsError into problem+json (see ``mds.api.errors``). One place catches
broad exceptions on purpose: the router turns anything else an adapter raises into that
provider's ``BadPayload`` (logged with its traceback) and fails over, since a vendor can
always surprise a parser.
"""

from __future__ import annotations


class MdsError(Exception):
    """Base of every error MDS raises on purpose."""


class ConfigError(MdsError):
    """A setting is invalid; ``setting`` names it the way the user spells it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


class ProviderError(MdsError):
    """A provider call failed. ``kind`` is the stable name used in logs, CLI and metrics."""

    kind = "provider_error"

    def __init__(self, provider: str, message: str = "", *, code: str | None = None) -> None:
        super().__init__(f"{provider}: {self.kind}: {message}" if message else f"{provider}: {self.kind}")
        self.provider = provider
        self.message = message
        # The metric label `code` (seed: provider_errors_total{code}); an HTTP status
        # where there is one, else the kind.
        self.code = code or self.kind

    #: Whether this failure should count against the provider's health.
    counts_as_failure = True


class AuthError(ProviderError):
    kind = "auth"


class NotEntitled(ProviderError):
    """The endpoint exists but the key's plan does not include it (e.g. 402/403 on a free key)."""

    kind = "not_entitled"
    counts_as_failure = False


class RateLimited(ProviderError):
    """Throttled. Back off for ``retry_after`` seconds; this is not a health failure."""

    kind = "rate_limited"
    counts_as_failure = False

    def __init__(
        self, provider: str, message: str = "", *, retry_after: float = 60.0, code: str = "429"
    ) -> None:
        super().__init__(provider, message, code=code)
        self.retry_after = retry_after


class NoData(ProviderError):
    kind = "no_data"
    counts_as_failure = False


class BadPayload(ProviderError):
    kind = "bad_payload"


class Unavailable(ProviderError):
    kind = "unavailable"


class NoProviderAvailable(MdsError):
    """Every provider for ``capability`` failed or was skipped; ``errors`` says why, by provider."""

    def __init__(self, capability: str, errors: dict[str, str], *, retry_after: float | None = None) -> None:
        detail = "; ".join(f"{p}: {e}" for p, e in errors.items()) or "no provider configured"
        super().__init__(f"no provider could serve {capability}: {detail}")
        self.capability = capability
        self.errors = errors
        #: Set when rate-limit pauses were the only obstacle: seconds until the soonest resume.
        self.retry_after = retry_after

    @property
    def all_skipped(self) -> bool:
        """True when no provider was even tried (breakers open, paused, probing)."""
        return bool(self.errors) and all(e.startswith("skipped:") for e in self.errors.values())

    @property
    def outage(self) -> bool:
        """True when no provider answered at all (each was down, open, probing or paused):
        the failure is the providers', not the request's."""
        return bool(self.errors) and all(
            e.startswith(("skipped:", "unavailable")) for e in self.errors.values()
        )


class StorageError(MdsError):
    """The store could not read or write (database down, constraint broken, closed store)."""


class QueueError(MdsError):
    """A job queue could not take, give or settle a job (e.g. Redis unreachable)."""


class InvalidJob(MdsError):
    def __init__(self, reason: str, payload: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.payload = payload


class InvalidRequest(MdsError):
    """A caller's input is wrong; ``field`` names it as the caller spelled it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Conflict(MdsError):
    """What the caller wants to create exists already and may not be replaced."""

    def __init__(self, kind: str, key: str, message: str = "") -> None:
        super().__init__(message or f"{kind} already exists: {key}")
        self.kind = kind
        self.key = key


class NotFound(MdsError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"unknown {kind}: {key}")
        self.kind = kind
        self.key = key
