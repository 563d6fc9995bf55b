"""Airflow's ``DagBag`` on every Airflow version we support: ``airflow.dag_processing.dagbag``
from Airflow 3.2, ``airflow.models.dagbag`` before. Only the tests and the benchmarks parse DAG
files this way (no task does), so it lives here, beside the tests the image ships."""

from __future__ import annotations


def dagbag_class() -> type:
    """Airflow's ``DagBag`` (imported when called)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag
    return DagBag
