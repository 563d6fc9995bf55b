"""Loaded at the start of every Airflow process of tests/e2e/test_scheduler.py (this folder is
first on their PYTHONPATH): pauses one DuckDB MERGE inside its open transaction, so the test can
kill the task's process there. Nothing else changes.

SFPD_TEST_PAUSE_MERGE_OF: text of the MERGE to pause (its window's first date as a literal);
SFPD_TEST_PAUSE_MARKER: the file it writes when paused (JSON: its pid, the load's time stamp,
the rows stamped with it inside the transaction), once: a retry finds the file and goes on."""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import re
import sys
import time

MODULE = "sfpd.warehouse.duckdb_engine"


def _pausing(merge):
    def _merge(self, sql):
        changes = merge(self, sql)
        marker = os.environ["SFPD_TEST_PAUSE_MARKER"]
        if os.environ["SFPD_TEST_PAUSE_MERGE_OF"] in sql and not os.path.exists(marker):
            stamp = int(re.search(r"MAKE_TIMESTAMP\((\d+)\)", sql)[1])
            raw = self.warehouse.table("incidents")
            (stamped,) = self.con.execute(
                f"SELECT count(*) FROM {raw} WHERE _loaded_at = make_timestamp({stamp})"
            ).fetchone()
            with open(marker + ".tmp", "w") as handle:
                json.dump({"pid": os.getpid(), "loaded_at_us": stamp, "stamped": stamped}, handle)
            os.rename(marker + ".tmp", marker)
            while True:  # until the test kills this process
                time.sleep(1)
        return changes

    return _merge


class _Patch(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Wraps DuckDBSession.merge once sfpd.warehouse.duckdb_engine is imported."""

    def find_spec(self, name, path=None, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        self._loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.DuckDBSession.merge = _pausing(module.DuckDBSession.merge)


if os.environ.get("SFPD_TEST_PAUSE_MARKER"):
    sys.meta_path.insert(0, _Patch())
