"""Names that moved between the Airflow versions we support (3.1 to 3.3), imported from one place.

- ``AirflowFailException``, ``AirflowNotFoundException``: ``airflow.sdk.exceptions`` from
  task-sdk 1.2 (Airflow 3.2); ``airflow.exceptions`` before.
- ``DagBag``: ``airflow.dag_processing.dagbag`` from Airflow 3.2; ``airflow.models.dagbag``
  before (the tests and the benchmarks use it; no task does).
"""

from __future__ import annotations

try:
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowFailException, AirflowNotFoundException


def dagbag_class() -> type:
    """Airflow's ``DagBag`` (imported when called: parsing a DAG file never needs it)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag
    return DagBag


__all__ = ["AirflowFailException", "AirflowNotFoundException", "dagbag_class"]
