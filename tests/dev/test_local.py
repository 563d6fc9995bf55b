"""`make run` (python -m sfpd_dev.local) refuses bad input and fails fast without the API."""

import datetime as dt
import json
import time

from sfpd.window import SF_TZ
from sfpd_dev import local
from sfpd_dev.ports import refusing_port


def test_unreachable_api_fails_within_a_minute_naming_the_offline_option(monkeypatch, capsys):
    monkeypatch.delenv("SFPD_SOURCE", raising=False)
    with refusing_port() as port:  # held: nothing else can listen there meanwhile
        conn = {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"}
        monkeypatch.setenv("AIRFLOW_CONN_SOCRATA_DEFAULT", json.dumps(conn))
        began = time.monotonic()
        assert local.main() == 1
        assert time.monotonic() - began < 60
    err = capsys.readouterr().err
    assert "Cannot reach the Socrata API" in err
    assert "SFPD_SOURCE=replay make run" in err


def test_unknown_source_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("SFPD_SOURCE", "carrier-pigeon")
    assert local.main() == 2
    assert "SFPD_SOURCE must be 'live' or 'replay'" in capsys.readouterr().err


def test_run_date_anchors_at_the_schedules_time_in_san_francisco():
    assert local.anchor_for("2019-01-01") == dt.datetime(2019, 1, 1, 6, tzinfo=SF_TZ)
    assert local.anchor_for(None).tzinfo is not None


def test_connection_json_names_the_endpoint():
    env = {"AIRFLOW_CONN_SOCRATA_DEFAULT": json.dumps({"host": "h", "port": 8, "schema": "http"})}
    endpoint = local.endpoint_from_env(env, "abcd-1234")
    assert endpoint.resource_url == "http://h:8/resource/abcd-1234.json"
    assert local.endpoint_from_env({}, "wg3w-h783").resource_url == (
        "https://data.sf.gov/resource/wg3w-h783.json"
    )
