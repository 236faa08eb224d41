"""What a job holds while it is in progress, deleted when it ends: its operator's token, its
customers on its cluster, its call slot."""

from __future__ import annotations

from django.db import models

from jobs.models.clusters import Cluster
from jobs.models.jobs import Job


class JobToken(models.Model):
    """The operator's token for a job that has not ended, encrypted (see jobs.tokens).

    Deleted in the transaction that ends the job, so no token outlives the call it was for.
    """

    job = models.OneToOneField(Job, on_delete=models.CASCADE, primary_key=True, related_name="+")
    ciphertext = models.TextField()

    def __str__(self) -> str:
        return f"token for {self.job_id}"


class InFlightCustomer(models.Model):
    """A customer with a job in progress on a cluster: at most one per (cluster, customer).

    The unique constraint is the conflict guard; the rows are deleted when the job ends.

    One foreign key of the database holds both columns: (cluster, job) references the job's
    (cluster, id), made by migration 0025, not by Django. So no
    row outlives its job, and none names a cluster other than its job's (whose own foreign key
    keeps the cluster). One check per row at the commit, where a key per column made two: a
    100,000-customer submit inserts 100,000 rows here.
    """

    # The unique (cluster, cid) index serves lookups by cluster: the foreign key needs none.
    cluster = models.ForeignKey(
        Cluster, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    cid = models.CharField(max_length=64)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+", db_constraint=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "cid"], name="inflight_unique_cluster_cid"),
        ]

    def __str__(self) -> str:
        return f"{self.cid} on {self.cluster_id} ({self.job_id})"


class InFlightCall(models.Model):
    """A call to a cluster in progress: one of the cluster's `max_concurrent_calls` slots.

    Taken in the transaction that starts the job and given back in the one that ends it; the
    unique (cluster, slot) makes the database refuse a call beyond the limit, whichever worker
    on whichever host asks.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="+")
    slot = models.PositiveIntegerField()
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "slot"], name="inflightcall_unique_slot"),
        ]

    def __str__(self) -> str:
        return f"call {self.slot} on {self.cluster_id} ({self.job_id})"
