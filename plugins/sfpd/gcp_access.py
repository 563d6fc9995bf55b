"""What the pipeline and dbt ask of Google Cloud, and what to grant for it.

:data:`PERMISSIONS` is the contract docs/deploy.md's "Permissions" table states: each IAM
permission a call of ours (or of dbt) needs, with the narrowest predefined role that carries it
and where to grant that role. :func:`refusal` turns Google's 403 for a missing permission into a
message naming the permission, the resource and the role to grant (the task then fails at once:
no retry grants a role). A 403 that names no permission (a quota's ``rateLimitExceeded``,
billing) is left as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Grant:
    """A predefined role, and where to grant it (``{bucket}``, ``{project}``, ``{dataset}``)."""

    role: str
    on: str


OBJECTS = Grant("roles/storage.objectAdmin", "the bucket gs://{bucket}")
BUCKET = Grant("roles/storage.legacyBucketReader", "the bucket gs://{bucket}")
JOBS = Grant("roles/bigquery.jobUser", "the project {project}")
DATA = Grant("roles/bigquery.dataEditor", "the dataset {dataset}")
DATASETS = Grant("roles/bigquery.user", "the project {project} (or make the dataset beforehand)")

# permission -> what grants it; docs/deploy.md, "Permissions", says which call needs which
PERMISSIONS: dict[str, Grant] = {
    "storage.buckets.get": BUCKET,  # the bucket's location, checked before any work
    "storage.objects.list": OBJECTS,
    "storage.objects.get": OBJECTS,
    "storage.objects.create": OBJECTS,
    "storage.objects.delete": OBJECTS,
    "bigquery.jobs.create": JOBS,
    "bigquery.datasets.get": DATA,
    "bigquery.datasets.create": DATASETS,  # only while a dataset is missing
    "bigquery.tables.create": DATA,
    "bigquery.tables.delete": DATA,
    "bigquery.tables.get": DATA,
    "bigquery.tables.getData": DATA,
    "bigquery.tables.list": DATA,
    "bigquery.tables.update": DATA,
    "bigquery.tables.updateData": DATA,
    "bigquery.routines.list": DATA,
}

# Google's words for a missing permission: BigQuery's "Permission bigquery.tables.getData
# denied on table p:d.t" and "User does not have bigquery.jobs.create permission in project p",
# Cloud Storage's "does not have storage.buckets.get access to ... Permission
# 'storage.buckets.get' denied on resource"
_PERMISSION = re.compile(
    r"(?:[Pp]ermission '?|does not have )(?P<name>[a-z]+\.[a-zA-Z]+\.[a-zA-Z]+)"
)
# BigQuery's resource: "Access Denied: Table p:d.t:", "... Dataset p:d:", "... Project p:"
_RESOURCE = re.compile(r"Access Denied: (?P<kind>Table|Dataset|Project) (?P<name>[\w.:-]+?):? ")


class AccessRefused(RuntimeError):
    """Google refused a call for a missing IAM permission."""


def refusal(exc: BaseException, project: str, bucket: str, dataset: str) -> AccessRefused | None:
    """A 403 naming a missing permission as what to grant (``project``, ``bucket``, ``dataset``:
    the pipeline's, named where Google's message does not name its own); None for any other
    error."""
    if getattr(exc, "code", None) != 403:
        return None
    said = " ".join(str(getattr(exc, "message", None) or exc).split())
    permission = _PERMISSION.search(said)
    if not permission:
        return None
    name = permission["name"]
    resource = _RESOURCE.search(said)
    if resource and resource["kind"] in ("Table", "Dataset"):
        dataset = resource["name"].split(":")[-1].split(".")[0]
    grant = PERMISSIONS.get(name)
    to_grant = (
        f"grant {grant.role} on {grant.on.format(bucket=bucket, project=project, dataset=dataset)}"
        if grant
        else "this is no call the pipeline's contract lists"
    )
    where = f" on {resource['kind'].lower()} {resource['name']}" if resource else ""
    return AccessRefused(
        f"Google refused the call{where}: the pipeline's account lacks the IAM permission "
        f'{name}. To fix, {to_grant} to it (docs/deploy.md, "Permissions"), then clear the '
        f"task. Google said: {said}"
    )
