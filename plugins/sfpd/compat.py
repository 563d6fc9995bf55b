"""Names that moved between the Airflow versions we support (3.1 to 3.3), imported from one place.

- ``AirflowFailException``, ``AirflowNotFoundException``: ``airflow.sdk.exceptions`` from
  task-sdk 1.2 (Airflow 3.2); ``airflow.exceptions`` before.
"""

from __future__ import annotations

try:
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
except ImportError:  # Airflow 3.1
    from airflow.exceptions import AirflowFailException, AirflowNotFoundException


__all__ = ["AirflowFailException", "AirflowNotFoundException"]
