"""Every change to a job's state goes through this package.

A job's life: `job_submit` records it (IN_PROGRESS, not started) and enqueues its task in the
same transaction; `job_run`, the task's body, claims it (started) together with one of its
cluster's `max_concurrent_calls` call slots, or, when all are taken, puts it back in the queue
to wait its turn (the end of a call to the cluster wakes the oldest waiting job); it calls the
cluster outside any transaction, and records the outcome (SUCCESS or FAILED);
`job_reap_stale` ends what a dead process left behind (UNKNOWN) or what no worker picked up
(FAILED). Each transition is a compare-and-set on the status, written with its audit entry in
one transaction, so a terminal state never changes and the cluster is called at most once per
job.

One module per part of that life; each imports from the others only what it needs, and none
imports a module that imports it:

- `input`: parsing and checking what an operator asks for (action, customers, cluster, token).
- `credentials`: clusters' stored credentials: setting and removing them, audited, what is
  shown of them, and who may run Set Actions with them (the worker alone decrypts them).
- `grants`: who may run which action on which cluster (run grants), and changing the grants.
- `freezes`: change freezes and maintenance windows: creating and removing them, audited,
  refusing submits during a freeze, and what holds a job at its claim.
- `busy`: which customers a job in progress holds (the conflict guard), read for a review.
- `submit`: recording jobs and queueing their tasks; idempotency keys, customer conflicts.
- `retry`: submitting a FAILED or UNKNOWN job, or a batch's such parts, again.
- `running`: the task (`run_job`) and its body: the claim, the call to the cluster, the
  outcome; and the one way to queue the task, which submitting and reaping use too.
- `slots`: a cluster's call slots: taking one, waking a waiting job when one is freed.
- `ending`: the one place a job's state ends (used by running, reaping and cancelling).
- `reaping`: ending what a dead process left behind, queueing lost tasks again.
- `cancelling`: ending queued jobs before they reach their cluster; a job waiting for
  approval is cancelled by withdrawing its request.
- `approving`: four-eyes approvals: which submissions wait for one, and approving, denying,
  withdrawing, expiring or reminding the approvers of the request they wait in.
- `reviews`: marking a job with an unknown outcome as looked at, audited.
- `approval_rules`: creating and removing approval rules, audited.
- `digests`: what an approval covers, which a worker checks before it sends a job.
- `counting`: keeping the per-hour counts of ended jobs, in the transaction that ends,
  removes or imports them.
- `archive`, `retention`, `restore`: purging ended jobs into a checked archive file, and
  bringing them back from it (or from a `job.deduplicated` audit entry).
- `stats`: reading those counts: the Overview's jobs per hour, failure rates, call times.
- `limits`: the sizes the others share.

Callers import from `jobs.services`, which names everything they use.
"""

from __future__ import annotations

from jobs.services.approval_rules import (
    DuplicateRule,
    approval_rule_create,
    approval_rule_delete,
)
from jobs.services.approving import (
    ApprovalClosed,
    ApprovalNeeded,
    Preapproval,
    approval_approve,
    approval_deny,
    approval_needed,
    approval_withdraw,
    approvals_expire,
    approvals_remind,
)
from jobs.services.archive import ArchiveError
from jobs.services.busy import BusyCustomer, CustomerConflict, busy_customers
from jobs.services.cancelling import CancelReport, job_cancel
from jobs.services.counting import (
    EndedJob,
    count_jobs_added,
    count_jobs_removed,
    ended_job,
)
from jobs.services.credentials import (
    CredentialStatus,
    credential_remove,
    credential_set,
    credential_status,
    stored_credential_granted,
    stored_credential_offered,
    stored_credential_usable,
)
from jobs.services.freezes import (
    Frozen,
    freeze_create,
    freeze_delete,
    window_create,
    window_delete,
)
from jobs.services.grants import (
    DuplicateGrant,
    NotGranted,
    RunChoices,
    grant_details,
    run_choices,
    run_grant_create,
    run_grant_delete,
    run_granted,
    run_refusal,
)
from jobs.services.input import (
    MAX_KEY_LENGTH,
    MAX_TOKEN_LENGTH,
    parse_action,
    parse_cids,
    set_action_checked,
    set_action_problems,
)
from jobs.services.limits import CHUNK, ERRORS_NAMED, MAX_ERROR_LENGTH
from jobs.services.reaping import (
    INTERRUPTED,
    NOT_STARTED,
    ReapReport,
    job_interrupted,
    job_reap_stale,
    job_requeue,
)
from jobs.services.restore import (
    RestoreError,
    RestoreReport,
    job_restore_deduplicated,
    jobs_restore,
)
from jobs.services.retention import PurgeReport, jobs_purge
from jobs.services.retry import (
    RetryPreview,
    batch_retry,
    batch_retry_preview,
    job_retry,
    job_retry_preview,
)
from jobs.services.reviews import job_mark_looked_at, may_mark_looked_at
from jobs.services.running import (
    CREDENTIAL_UNREADABLE_MESSAGE,
    KEY_CHANGED_MESSAGE,
    NO_CREDENTIAL_MESSAGE,
    NOT_AS_APPROVED_MESSAGE,
    WAIT_RECHECK,
    Claim,
    job_run,
    run_job,
)
from jobs.services.slots import SLOT_ROUNDS, WAKE_LOOKAHEAD
from jobs.services.stats import (
    OUTCOMES,
    PERIODS,
    CallTimePoint,
    ClusterCallTimes,
    ClusterFailures,
    OutcomeBin,
    Overview,
    overview_stats,
)
from jobs.services.submit import (
    SubmitPreview,
    Submitted,
    job_submit,
    job_submit_preview,
)

__all__ = [
    "CHUNK",
    "CREDENTIAL_UNREADABLE_MESSAGE",
    "ERRORS_NAMED",
    "INTERRUPTED",
    "KEY_CHANGED_MESSAGE",
    "MAX_ERROR_LENGTH",
    "MAX_KEY_LENGTH",
    "MAX_TOKEN_LENGTH",
    "NOT_AS_APPROVED_MESSAGE",
    "NOT_STARTED",
    "NO_CREDENTIAL_MESSAGE",
    "OUTCOMES",
    "PERIODS",
    "SLOT_ROUNDS",
    "WAIT_RECHECK",
    "WAKE_LOOKAHEAD",
    "ApprovalClosed",
    "ApprovalNeeded",
    "ArchiveError",
    "BusyCustomer",
    "CallTimePoint",
    "CancelReport",
    "Claim",
    "ClusterCallTimes",
    "ClusterFailures",
    "CredentialStatus",
    "CustomerConflict",
    "DuplicateGrant",
    "DuplicateRule",
    "EndedJob",
    "Frozen",
    "NotGranted",
    "OutcomeBin",
    "Overview",
    "Preapproval",
    "PurgeReport",
    "ReapReport",
    "RestoreError",
    "RestoreReport",
    "RetryPreview",
    "RunChoices",
    "SubmitPreview",
    "Submitted",
    "approval_approve",
    "approval_deny",
    "approval_needed",
    "approval_rule_create",
    "approval_rule_delete",
    "approval_withdraw",
    "approvals_expire",
    "approvals_remind",
    "batch_retry",
    "batch_retry_preview",
    "busy_customers",
    "count_jobs_added",
    "count_jobs_removed",
    "credential_remove",
    "credential_set",
    "credential_status",
    "ended_job",
    "freeze_create",
    "freeze_delete",
    "grant_details",
    "job_cancel",
    "job_interrupted",
    "job_mark_looked_at",
    "job_reap_stale",
    "job_requeue",
    "job_restore_deduplicated",
    "job_retry",
    "job_retry_preview",
    "job_run",
    "job_submit",
    "job_submit_preview",
    "jobs_purge",
    "jobs_restore",
    "may_mark_looked_at",
    "overview_stats",
    "parse_action",
    "parse_cids",
    "run_choices",
    "run_grant_create",
    "run_grant_delete",
    "run_granted",
    "run_job",
    "run_refusal",
    "set_action_checked",
    "set_action_problems",
    "stored_credential_granted",
    "stored_credential_offered",
    "stored_credential_usable",
    "window_create",
    "window_delete",
]
