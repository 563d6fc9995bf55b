"""Where the Socrata API is and how it is reached (sfpd.socrata.endpoint), from an Airflow
connection's fields: what may be set, and a clear refusal, naming the option, of what may not."""

import pytest

from sfpd.config import ConfigError
from sfpd.socrata import SocrataEndpoint, SocrataSource


def from_extra(**extra) -> SocrataEndpoint:
    return SocrataEndpoint.from_connection_fields("data.sf.gov", None, None, "t", extra=extra)


def test_the_extra_tunes_the_api_timeouts_and_retries():
    endpoint = from_extra(api=" SODA3 ", read_timeout="90", connect_timeout=5, retries="3",
                          backoff_factor=0.5)  # fmt: skip
    assert (endpoint.api, endpoint.read_timeout, endpoint.connect_timeout) == ("soda3", 90.0, 5.0)
    assert (endpoint.retries, endpoint.backoff_factor) == (3, 0.5)
    assert from_extra().resource_url == "https://data.sf.gov/resource/wg3w-h783.json"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"retries": "many"}, "retries='many': it must be a whole number, 0 or more"),
        ({"retries": 2.5}, "retries=2.5: it must be a whole number"),
        ({"retries": -1}, "retries=-1: it must be a whole number, 0 or more"),
        ({"retries": True}, "retries=True: it must be a whole number"),
        ({"read_timeout": "a minute"}, "read_timeout='a minute': it must be a number of seconds"),
        ({"read_timeout": 0}, "read_timeout=0: it must be a number of seconds above 0"),
        ({"connect_timeout": None}, "connect_timeout=None: it must be a number of seconds"),
        ({"backoff_factor": [1]}, r"backoff_factor=\[1\]: it must be a number of seconds"),
        ({"api": "soda4"}, "api must be one of"),
    ],
)
def test_a_bad_option_in_the_extra_is_refused_naming_it(extra, message):
    with pytest.raises(ConfigError, match=message) as refused:
        from_extra(**extra)
    if "api" not in extra:
        assert str(refused.value).startswith("The Socrata connection's extra has ")


def test_page_size_and_scheme_are_bounded():
    with pytest.raises(ValueError, match="page_size"):
        SocrataSource(SocrataEndpoint(), page_size=50_001)
    with pytest.raises(ConfigError, match="scheme"):
        SocrataEndpoint(scheme="ftp")
