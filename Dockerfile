# Astro Runtime 3.1-1 (Airflow 3.1.0, Python 3.12): the image deploy/targets/astro-3.1 stands
# for, on which tests/targets proves requirements.txt (docs/deploy.md, "Where it runs"). The
# runtime's ONBUILD steps install packages.txt and requirements.txt and copy the project to
# /usr/local/airflow (minus .dockerignore).
FROM astrocrpublic.azurecr.io/runtime:3.1-1

ENV AIRFLOW__COSMOS__ENABLE_TELEMETRY=False

# Cosmos renders the dbt project from its manifest (LoadMode.DBT_MANIFEST): build it in the
# image so it always matches the models shipped with it.
RUN cd include/dbt && dbt parse --quiet --profiles-dir .
