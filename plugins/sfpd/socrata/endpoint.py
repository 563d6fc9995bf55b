"""Where the Socrata API is and how it is reached: the endpoint (host, API, app token, timeouts,
retries) from an Airflow connection's fields, the retrying HTTP adapter, and the errors a read
ends with."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from sfpd.config import DEFAULT_DATASET_ID, ConfigError

log = logging.getLogger(__name__)

DEFAULT_HOST = "data.sf.gov"  # DataSF's domain since September 2026 (data.sfgov.org redirects)
APIS = ("soda2", "soda3")
OFFLINE_HINT = "To run without network, use the bundled replay server: SFPD_SOURCE=replay make run"
TOKEN_HINT = (
    "Create an app token on the portal (profile → Developer settings) and put it in the "
    "Socrata connection's password (AIRFLOW_CONN_SOCRATA_DEFAULT, see the README)"
)
KEY = "row_id"  # unique per row and kept by a reload: the paging key
REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5


class SourceUnreachable(RuntimeError):
    """The Socrata server could not be reached (or kept timing out) after retries."""


class SourceError(RuntimeError):
    """The Socrata server kept answering with an error, or with something that is not rows."""


def redact(url: str) -> str:
    """A URL safe for logs: an app token passed as a parameter is masked."""
    return re.sub(r"(\$\$app_token=)[^&]*", r"\1***", url)


@dataclass(frozen=True)
class SocrataEndpoint:
    host: str = DEFAULT_HOST
    scheme: str = "https"
    port: int | None = None
    app_token: str | None = None
    dataset_id: str = DEFAULT_DATASET_ID
    api: str = "soda2"
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 8
    backoff_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.scheme not in ("http", "https"):
            raise ConfigError(f"Socrata scheme must be http or https, not {self.scheme!r}")
        if self.api not in APIS:
            raise ConfigError(f"Socrata api must be one of {APIS}, not {self.api!r}")
        if self.api == "soda3" and not self.app_token:
            raise ConfigError(f"SODA3 needs an app token, and none is configured. {TOKEN_HINT}")

    @classmethod
    def from_connection_fields(
        cls,
        host: str | None,
        port: int | None,
        schema: str | None,
        password: str | None,
        dataset_id: str = DEFAULT_DATASET_ID,
        extra: Mapping | None = None,
    ) -> SocrataEndpoint:
        """From an Airflow connection's fields; empty fields mean the public DataSF API.
        The extra may choose the ``api`` (soda2, soda3) and tune read_timeout,
        connect_timeout, retries and backoff_factor."""
        extra = extra or {}
        options = {key: _option(key, extra[key]) for key in _OPTIONS if key in extra}
        return cls(
            host=host or DEFAULT_HOST,
            scheme=schema or "https",
            port=int(port) if port else None,
            app_token=password or None,
            dataset_id=dataset_id,
            **options,
        )

    @property
    def base_url(self) -> str:
        domain = f"{self.host}:{self.port}" if self.port else self.host
        return f"{self.scheme}://{domain}"

    @property
    def resource_url(self) -> str:
        return f"{self.base_url}/resource/{self.dataset_id}.json"


def _whole(value: object) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError(f"{value!r} is not a whole number")
    return int(number)


# The connection extra's options: how each is read, and what it must be.
_OPTIONS: dict[str, tuple[Callable, Callable, str]] = {
    "api": (lambda value: str(value).strip().lower(), lambda api: True, "soda2 or soda3"),
    "read_timeout": (float, lambda seconds: seconds > 0, "a number of seconds above 0"),
    "connect_timeout": (float, lambda seconds: seconds > 0, "a number of seconds above 0"),
    "retries": (_whole, lambda retries: retries >= 0, "a whole number, 0 or more"),
    "backoff_factor": (float, lambda factor: factor >= 0, "a number of seconds, 0 or more"),
}


def _option(key: str, value: object) -> object:
    """An option of the connection's extra, read; a value that cannot be is refused by name."""
    convert, valid, expected = _OPTIONS[key]
    try:
        converted = convert(value)
    except (TypeError, ValueError):
        converted = None
    if converted is None or isinstance(value, bool) or not valid(converted):
        raise ConfigError(
            f"The Socrata connection's extra has {key}={value!r}: it must be {expected}"
        )
    return converted


RETRY_STATUSES = (202, 429, 500, 502, 503, 504)


def retrying_adapter(endpoint: SocrataEndpoint) -> HTTPAdapter:
    # 202 (still preparing the result), 429 (throttled) and server errors are retried with
    # exponential backoff and jitter, honouring Retry-After; so are read timeouts. Connection
    # errors get two quick retries so an unreachable host fails fast. SODA3's POST is a read.
    retry = Retry(
        total=endpoint.retries,
        connect=2,
        redirect=False,  # redirects are followed by SocrataSource._send, which logs them
        backoff_factor=endpoint.backoff_factor,
        backoff_max=60,
        backoff_jitter=endpoint.backoff_factor / 2,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=("GET", "POST"),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    return HTTPAdapter(max_retries=retry)
