"""The reference seeds (include/seeds) hold the published figures the tests count with
(tests/conftest.py): DataSF's 41 Analysis Neighborhoods, SFPD's 10 police districts and the
dataset's 'Out of SF'."""

import csv

from tests.conftest import NEIGHBORHOODS, POLICE_DISTRICTS, PROJECT_ROOT

SEEDS = PROJECT_ROOT / "include" / "seeds"


def rows(name: str) -> list[dict]:
    with (SEEDS / f"{name}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_seeds_hold_the_published_neighborhoods_and_districts():
    neighborhoods = {row["analysis_neighborhood"] for row in rows("analysis_neighborhoods")}
    assert len(neighborhoods) == len(rows("analysis_neighborhoods")) == NEIGHBORHOODS
    districts = rows("police_districts")
    assert len({row["police_district"] for row in districts}) == len(districts)
    assert len(districts) == POLICE_DISTRICTS
    assert [row["police_district"] for row in districts if row["is_out_of_sf"] == "true"] == [
        "Out of SF"
    ]
