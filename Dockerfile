# Astro Runtime 3.x (Airflow 3). The runtime's ONBUILD steps install packages.txt and
# requirements.txt and copy the project to /usr/local/airflow.
FROM astrocrpublic.azurecr.io/runtime:3.1-1

ENV AIRFLOW__COSMOS__ENABLE_TELEMETRY=False

# Cosmos renders the dbt project from its manifest (LoadMode.DBT_MANIFEST): build it in the
# image so it always matches the models shipped with it.
RUN cd include/dbt && dbt parse --quiet --profiles-dir .
