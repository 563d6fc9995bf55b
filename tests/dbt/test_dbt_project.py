"""The dbt project on DuckDB with every bundled real row: all data tests pass, the unit tests
pass, the marts add up, the incremental fact replaces exactly the window, freshness and
contracts hold, and every public column is documented."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from sfpd.config import Settings
from tests.conftest import NEIGHBORHOODS, bundled_rows, query, reports_of
from tests.dbt.conftest import DBT_DIR, dbt

RAW_ROWS, REPORTS = len(bundled_rows()), reports_of(bundled_rows())  # every bundled row


def results(env: dict) -> list[dict]:
    return json.loads((Path(env["DBT_TARGET_PATH"]) / "run_results.json").read_text())["results"]


def manifest(env: dict) -> dict:
    return json.loads((Path(env["DBT_TARGET_PATH"]) / "manifest.json").read_text())


SINGULAR = {
    "assert_report_marts_add_up_to_the_facts",
    "assert_hotspots_cover_every_neighborhood_hour",
}


def test_build_passes_every_data_test_on_the_real_rows(build_results):
    statuses = Counter(r["status"] for r in build_results if r["unique_id"].startswith("test."))
    assert statuses["pass"] >= 65 and set(statuses) <= {"pass", "warn"}, statuses
    # the checks production runs on every build, the marts adding up among them
    singular = {r["unique_id"].split(".")[2]: r["status"] for r in build_results
                if r["unique_id"].split(".")[2] in SINGULAR}  # fmt: skip
    assert singular == dict.fromkeys(SINGULAR, "pass")


def test_the_marts_checks_fail_when_the_marts_do_not_add_up(copy_env):
    with duckdb.connect(copy_env["SFPD_DUCKDB_PATH"]) as con:
        con.execute(
            "DELETE FROM sfpd_marts.rpt_monthly_reports_by_district WHERE rowid IN "
            "(SELECT min(rowid) FROM sfpd_marts.rpt_monthly_reports_by_district)"
        )
        con.execute(
            "DELETE FROM sfpd_marts.rpt_hotspots_by_neighborhood "
            "WHERE analysis_neighborhood = 'Mission' AND incident_hour = 3"
        )
    done = dbt(copy_env, "test", "--select", "test_type:singular", check=False)
    assert done.returncode == 1
    failed = {r["unique_id"].split(".")[2] for r in results(copy_env) if r["status"] == "fail"}
    assert failed == SINGULAR


def test_unit_tests_pass(built):
    dbt(built, "test", "--select", "test_type:unit")
    unit = [r for r in results(built) if r["unique_id"].startswith("unit_test.")]
    assert len(unit) == 4 and {r["status"] for r in unit} == {"pass"}


def test_unit_tests_can_fail(built, tmp_path):
    """A wrong expectation fails: the unit tests compare, they do not just run."""
    project = tmp_path / "dbt"
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    models = project / "models" / "marts" / "core" / "_core__models.yml"
    right, wrong = 'primary_row_id: "104134"', 'primary_row_id: "106244"'
    models.write_text(models.read_text().replace(right, wrong))
    env = {**built, "DBT_TARGET_PATH": str(tmp_path / "target")}
    done = dbt(env, "test", "--select", "test_type:unit", project_dir=project, check=False)
    assert done.returncode == 1
    assert "primary_offence_is_the_most_severe_then_lowest_code" in done.stdout


def test_every_bundled_category_label_is_mapped(built):
    # (a new label upstream shows as is_category_mapped = false, its own data test warns)
    assert query(
        built, "SELECT count(*) FROM sfpd_marts.fct_incident_offences WHERE NOT is_category_mapped"
    ) == [(0,)]
    assert query(built, "SELECT count(*) FROM sfpd_marts.fct_incident_offences") == [(RAW_ROWS,)]
    assert query(built, "SELECT count(*) FROM sfpd_marts.fct_incident_reports") == [(REPORTS,)]


def test_hotspots_leave_out_sensitive_reports_and_count_imprecise_times_apart(built):
    """(Every neighborhood's 168 cells and their expected counts: the singular dbt test.)"""
    cells = query(
        built,
        "SELECT analysis_neighborhood, sum(report_count + imprecise_time_report_count), "
        "avg(z_score), "
        "sum(CASE WHEN imprecise_time_report_count > 0 AND incident_hour NOT IN (0, 12) "
        "THEN 1 ELSE 0 END) "
        "FROM sfpd_marts.rpt_hotspots_by_neighborhood GROUP BY 1",
    )
    located = query(
        built,
        "SELECT count(*) FILTER (WHERE NOT has_sensitive_offence), "
        "count(*) FILTER (WHERE has_sensitive_offence) FROM sfpd_marts.fct_incident_reports "
        "WHERE analysis_neighborhood IS NOT NULL",
    )[0]
    # every located report without a sensitive offence, once; the sensitive ones left out
    assert sum(row[1] for row in cells) == located[0] and located[1] > 0
    assert all(row[2] is None or abs(row[2]) < 1e-9 for row in cells)
    assert all(row[3] == 0 for row in cells)  # imprecise times are only at 00:00 and 12:00


def test_hotspot_scores_and_ranks_recomputed(built):
    rows = query(
        built,
        "SELECT analysis_neighborhood, day_of_week_number, incident_hour, report_count, "
        "expected_report_count, hotspot_score, hotspot_rank "
        "FROM sfpd_marts.rpt_hotspots_by_neighborhood",
    )
    by_neighborhood, by_hour = Counter(), Counter()
    for name, day, hour, count, *_ in rows:
        by_neighborhood[name] += count
        by_hour[day, hour] += count
    total = sum(by_neighborhood.values())
    for name, day, hour, count, expected, score, rank in rows:
        mu = by_neighborhood[name] * by_hour[day, hour] / total
        assert expected == pytest.approx(mu, abs=1e-4)
        deviance = 2 * (count * math.log(max(count, 1) / mu) - (count - mu)) if mu else 0
        assert score == pytest.approx(math.copysign(math.sqrt(max(deviance, 0)), count - mu),
                                      abs=1e-4)  # fmt: skip
        assert (rank is not None) == (count >= 10)
    ranked = sorted((r for r in rows if r[6] is not None), key=lambda r: r[6])
    assert [r[5] for r in ranked] == sorted((r[5] for r in ranked), reverse=True)


def test_emerging_hotspots_recomputed_from_the_reports(built):
    reports = query(
        built,
        "SELECT analysis_neighborhood, primary_category_group, incident_date "
        "FROM sfpd_marts.fct_incident_reports "
        "WHERE analysis_neighborhood IS NOT NULL AND NOT has_sensitive_offence",
    )
    first, last = query(
        built, "SELECT min(incident_date), max(incident_date) FROM sfpd_marts.fct_incident_reports"
    )[0]
    end = last + dt.timedelta(days=1)
    start = end - dt.timedelta(days=28)
    baseline_start = max(first, start - dt.timedelta(days=364))
    recent, baseline = Counter(), Counter()
    for name, group, day in reports:
        if day >= start:
            recent[name, group] += 1
        elif day >= baseline_start:
            baseline[name, group] += 1
    rows = query(
        built,
        "SELECT analysis_neighborhood, category_group, period_start_date, period_end_date, "
        "baseline_days, recent_report_count, baseline_report_count, expected_report_count, "
        "hotspot_rank FROM sfpd_marts.rpt_emerging_hotspots",
    )
    assert len(rows) == NEIGHBORHOODS * 4
    for name, group, period_start, period_end, days, n_recent, n_base, expected, rank in rows:
        assert (period_start, period_end, days) == (start, end, (start - baseline_start).days)
        assert (n_recent, n_base) == (recent[name, group], baseline[name, group])
        assert expected == pytest.approx((n_base + 0.5) * 28 / days, abs=1e-4)
        assert (rank is not None) == (n_recent >= 10)
    assert any(rank is not None for *_, rank in rows)


def test_rolling_28_days_and_year_over_year(built):
    reports = query(
        built,
        "SELECT incident_date, count(*) FROM sfpd_marts.fct_incident_reports "
        "WHERE police_district = 'Central' AND primary_category_group = 'property' GROUP BY 1",
    )
    by_day = dict(reports)
    day = dt.date(2019, 10, 31)
    expected = sum(by_day.get(day - dt.timedelta(days=n), 0) for n in range(28))
    prior = sum(by_day.get(day - dt.timedelta(days=364 + n), 0) for n in range(28))
    assert expected > 0
    assert query(
        built,
        "SELECT rolling_28d_report_count, prior_year_rolling_28d_report_count "
        "FROM sfpd_marts.rpt_daily_reports_by_district WHERE incident_date = DATE '2019-10-31' "
        "AND police_district = 'Central' AND category_group = 'property'",
    ) == [(expected, prior)]
    # December 2018 has no year before it in the data: no year-over-year figure
    assert query(
        built,
        "SELECT count(*) FROM sfpd_marts.rpt_daily_reports_by_district "
        "WHERE incident_date < DATE '2019-01-01' "
        "AND prior_year_rolling_28d_report_count IS NOT NULL",
    ) == [(0,)]


def test_source_freshness_warns_on_a_silent_source_and_fails_when_loads_stop(copy_env):
    dbt(copy_env, "source", "freshness")
    with duckdb.connect(copy_env["SFPD_DUCKDB_PATH"]) as con:
        con.execute("UPDATE sfpd_raw.incidents SET _loaded_at = _loaded_at - INTERVAL 4 DAY")
    # no raw row written for 4 days, the loads still landing: DataSF is silent, a warning
    silent = dbt(copy_env, "source", "freshness", check=False)
    assert silent.returncode == 0, silent.stdout
    assert "WARN freshness of sfpd.incidents" in silent.stdout
    assert "PASS freshness of sfpd.load_audit" in silent.stdout
    # the threshold is the staleness message's (SFPD_STALE_AFTER_DAYS: 5 days, not 4 yet)
    patient = {**copy_env, **Settings.from_env({"SFPD_STALE_AFTER_DAYS": "5"}).dbt_env()}
    patient["SFPD_DUCKDB_PATH"] = copy_env["SFPD_DUCKDB_PATH"]
    assert "PASS freshness of sfpd.incidents" in dbt(patient, "source", "freshness").stdout
    with duckdb.connect(copy_env["SFPD_DUCKDB_PATH"]) as con:
        con.execute("UPDATE sfpd_raw.load_audit SET loaded_at = loaded_at - INTERVAL 4 DAY")
    stopped = dbt(copy_env, "source", "freshness", check=False)
    assert stopped.returncode != 0
    assert "ERROR STALE freshness of sfpd.load_audit" in stopped.stdout


def test_public_marts_have_enforced_contracts_and_documented_columns(built):
    marts = [
        node for node in manifest(built)["nodes"].values()
        if node["resource_type"] == "model" and node["fqn"][1] == "marts"
    ]  # fmt: skip
    assert len(marts) == 9
    for node in marts:
        assert node["config"]["contract"]["enforced"] is True, node["name"]
        assert node["description"], node["name"]
        built_columns = {
            name for (name,) in query(
                built,
                "SELECT column_name FROM information_schema.columns "
                f"WHERE table_schema = 'sfpd_marts' AND table_name = '{node['name']}'",
            )
        }  # fmt: skip
        assert set(node["columns"]) == built_columns, node["name"]
        for name, column in node["columns"].items():
            assert column["description"] and column["data_type"], f"{node['name']}.{name}"


def test_each_layer_reads_only_the_layers_before_it(built):
    """staging reads sources; intermediate reads staging, intermediate, seeds and the facts (the
    tables built by month: what reads the raw table); marts read anything before them. Any other
    intermediate model downstream of a mart is in the wrong folder."""
    nodes = manifest(built)["nodes"]
    order = {"staging": 0, "intermediate": 1, "marts": 2}
    models = {uid: node for uid, node in nodes.items() if node["resource_type"] == "model"}
    for node in models.values():
        layer = order[node["fqn"][1]]
        for upstream in node["depends_on"]["nodes"]:
            if upstream in models and not models[upstream]["name"].startswith("fct_"):
                assert order[models[upstream]["fqn"][1]] <= layer, (node["name"], upstream)
        assert node["name"].startswith(("stg_", "int_", "fct_", "dim_", "rpt_")[min(layer, 2) :])


def primary_keys(manifest: dict) -> dict[str, list[list[str]]]:
    """Each model's tested grains: a column tested unique and not null, or the columns of a
    unique_combination test."""
    tests: dict[tuple[str, str | None], set[str]] = {}
    grains: dict[str, list[list[str]]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] != "test" or not node.get("test_metadata"):
            continue
        kind, model = node["test_metadata"]["name"], node["attached_node"]
        if kind == "unique_combination":
            grains.setdefault(model, []).append(node["test_metadata"]["kwargs"]["columns"])
        tests.setdefault((model, node.get("column_name")), set()).add(kind)
    for (model, column), kinds in tests.items():
        if column and {"unique", "not_null"} <= kinds:
            grains.setdefault(model, []).append([column])
    return grains


def test_every_model_declares_and_tests_its_grain(built):
    """Every model's primary key is tested: a dashboard joining or counting on it can trust it.
    (unique_combination is this project's generic test, include/dbt/tests/generic.) The views
    over the raw table are tested through the offence fact, their rows one for one: a test on
    them would read the whole raw table at each build."""
    nodes = manifest(built)["nodes"]
    grains = primary_keys(manifest(built))
    models = [uid for uid, node in nodes.items() if node["resource_type"] == "model"]
    assert len(models) == 12
    fact = grains["model.sfpd.fct_incident_offences"]
    for view in ("stg_sfpd__incidents", "int_incident_offences__categorised"):
        grains.setdefault(f"model.sfpd.{view}", fact)
    assert [nodes[uid]["name"] for uid in models if uid not in grains] == []
