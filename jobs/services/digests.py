"""What an approval covers, as digests: one per job (what its worker would send, and where),
and one per request over its jobs' in the batch's order. The request's is recorded when it is
made and on each decision; a worker recomputes its job's before it calls the cluster and
sends nothing that differs from what was approved."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from jobs.models import Job
from jobs.validators import cluster_endpoint


def part_digest(job: Job, cids: Sequence[str]) -> str:
    """SHA-256 of what `job`'s worker sends: the action, the cluster and the endpoint it calls
    (base URL + action path) with its TLS check, the job's recorded payload, and its customers
    (`cids`) in order."""
    text = json.dumps(
        {
            "action": job.action,
            "cluster": job.cluster_id,
            "endpoint": cluster_endpoint(job.cluster_url, job.action_path),
            "verify_tls": job.verify_tls,
            "payload": job.request_payload,
            "cids": list(cids),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def request_digest(part_digests: Sequence[str]) -> str:
    """SHA-256 over the digests of a request's jobs, in the batch's order."""
    return hashlib.sha256("\n".join(part_digests).encode()).hexdigest()
