"""`make bundle-composer` lays out what a Cloud Composer bucket syncs (dags/, plugins/, data/):
the DAGs must import from that layout alone, with the dbt project found under data/dbt."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

CHECK = """
import json, sys
from tests.dags.dagbag import dagbag_class
DagBag = dagbag_class()
import sfpd
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("sfpd_incidents_daily")
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "package": sfpd.__file__,
    "tasks": sorted(t.task_id for t in dag.tasks) if dag else [],
}))
"""


def test_composer_bundle_imports_from_the_bucket_layout(tmp_path):
    bundle = tmp_path / "gcs"
    subprocess.run(
        ["make", "-s", "bundle-composer", f"BUNDLE={bundle}"],
        cwd=PROJECT_ROOT, check=True, timeout=300,
    )  # fmt: skip
    seeds = bundle / "data" / "dbt" / "seeds"
    assert not seeds.is_symlink() and (seeds / "police_districts.csv").is_file()
    assert (bundle / "data" / "dbt" / "target" / "manifest.json").is_file()
    assert (bundle / "plugins" / ".airflowignore").is_file()
    # the bucket holds the runtime package only: no replay server, local runner or benchmarks
    shipped = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*.py")}
    runtime = {p.relative_to(PROJECT_ROOT).as_posix() for p in PROJECT_ROOT.glob("plugins/**/*.py")}
    assert {p for p in shipped if p.startswith("plugins/")} == runtime
    assert not {p for p in shipped if "sfpd_dev" in p or p.startswith("tests/")}

    env = {k: v for k, v in os.environ.items() if not k.startswith("SFPD_")}
    env.update(
        # Composer puts plugins/ on sys.path; the project root only for tests.dags.dagbag
        PYTHONPATH=os.pathsep.join([str(bundle / "plugins"), str(PROJECT_ROOT)]),
        AIRFLOW__CORE__DAGS_FOLDER=str(bundle / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(bundle / "plugins"),
    )
    done = subprocess.run(
        [sys.executable, "-c", CHECK, str(bundle / "dags")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["package"].startswith(str(bundle / "plugins"))
    assert "dbt.stg_sfpd__incidents.run" in result["tasks"]
