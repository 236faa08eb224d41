"""Forms of the operator UI: they parse input; the rules live in jobs.services."""

from __future__ import annotations

import uuid
from datetime import datetime

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef

from jobs.csvinput import MAX_CSV_BYTES, csv_read_cids
from jobs.models import MAX_REVIEW_NOTE, Cluster, Job
from jobs.services import run_choices, stored_credential_offered, stored_credential_usable
from jobs.tokens import SEAL_TTL_SECONDS, InvalidToken, token_unseal
from lib.forms import created_on_days, day_range_error

CLEARED_NOTICE = "The API token was cleared; type it again."
SEAL_REFUSED = (
    f"This review expired (a review lasts {SEAL_TTL_SECONDS // 60} minutes) or was not made "
    "for you: type the API token again."
)


def cluster_choice_label(cluster: Cluster) -> str:
    """A cluster as a choice: its name, and its environment label when it has one."""
    if cluster.environment:
        return f"{cluster.name} ({cluster.get_environment_display()})"
    return cluster.name


class SetActionForm(forms.Form):
    """A Set Action as the operator types it. It offers only the actions and clusters the
    user's run grants cover (`choices`, empty without any grant); a pair of them that no one
    grant covers is refused by the service."""

    action = forms.TypedChoiceField(
        choices=[("", "Choose an action"), *Job.Action.choices],
        coerce=int,
        error_messages={"required": "Choose an action."},
    )
    cluster = forms.ModelChoiceField(
        queryset=Cluster.objects.filter(is_active=True), empty_label=None
    )
    cids = forms.CharField(
        label="Customer IDs",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "placeholder": "C1001, C1002\nC1003"}),
        help_text="Separated by commas, spaces or new lines.",
    )
    csv_file = forms.FileField(
        label="or a CSV file",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
        help_text="A column headed cid, customer_id or CID, or a single column; at most 5 MB.",
    )
    token = forms.CharField(
        label="Cluster API token",
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
    )
    use_stored_credential = forms.BooleanField(
        label="Use the cluster's stored credential instead of a token",
        required=False,
        help_text="Where your run grant allows it and the cluster has one.",
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)
    freeze_override_reason = forms.CharField(
        label="Override a change freeze, because",
        required=False,
        max_length=500,
        help_text="Administrators only: during a change freeze of the cluster, send it anyway "
        "for this reason (audited). Leave empty otherwise.",
    )

    def __init__(self, *args, user, token_missing: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Offered only where a grant of the user allows a cluster's stored credential.
        if not stored_credential_offered(user=user):
            del self.fields["use_stored_credential"]
            # A token is then always needed: the browser says so before anything is sent.
            self.fields["token"].required = True
        # Offered only to those who may override a freeze (jobs.services.freezes).
        if not user.has_perm("jobs.override_freeze"):
            del self.fields["freeze_override_reason"]
        self.choices = run_choices(user=user)
        self.fields["action"].choices = [
            ("", "Choose an action"),
            *((code, Job.Action(code).label) for code in self.choices.actions),
        ]
        self.fields["cluster"].queryset = self.choices.clusters
        self.fields["cluster"].label_from_instance = cluster_choice_label
        # Made when the form is shown: a resubmission of this very form replays, not repeats.
        self.fields["idempotency_key"].initial = uuid.uuid4().hex
        # The form shown again after its review: what the operator typed, but the token.
        if token_missing:
            self.fields["token"].error_messages["required"] = token_missing

    def labelled_clusters(self) -> list[Cluster]:
        """The clusters offered that an admin gave an environment label, shown beside the
        choice (an option shows the word only: it takes no colour)."""
        return [cluster for cluster in self.fields["cluster"].queryset if cluster.environment]

    def clean_csv_file(self):
        upload = self.cleaned_data.get("csv_file")
        if upload is None:
            return None
        if upload.size > MAX_CSV_BYTES:
            raise ValidationError("The CSV file is larger than 5 MB.")
        return csv_read_cids(upload.read())

    def clean(self):
        cleaned = super().clean()
        self._check_customers(cleaned)
        # The token is required unless the cluster's stored credential is used instead.
        if (
            not cleaned.get("use_stored_credential")
            and not cleaned.get("token")
            and "token" not in self.errors
        ):
            self.add_error("token", self.fields["token"].error_messages["required"])
        return cleaned

    def _check_customers(self, cleaned: dict) -> None:
        """Customer IDs typed or a CSV file: one of them, not both."""
        if cleaned.get("cids", "").strip() and cleaned.get("csv_file"):
            raise ValidationError("Give customer IDs or a CSV file, not both.")
        # A CSV file that was refused already has its own error.
        given = cleaned.get("cids", "").strip() or cleaned.get("csv_file")
        if not given and "csv_file" not in self.errors:
            self.add_error("cids", "Give customer IDs, or choose a CSV file.")

    def customers(self) -> tuple[str | list[str], list[str] | None]:
        """The customer IDs as given, and their CSV positions when they came from a file."""
        data = self.cleaned_data
        return data["csv_file"] if data.get("csv_file") else (data["cids"], None)

    def submission(self) -> dict:
        """The arguments for jobs.services.job_submit_preview."""
        data = self.cleaned_data
        cids, positions = self.customers()
        return {
            "action": data["action"],
            "cluster": data["cluster"],
            "cids": cids,
            "cid_positions": positions,
            "token": data["token"] or None,
            "stored_credential": bool(data.get("use_stored_credential")),
            "idempotency_key": data["idempotency_key"],
            "freeze_override_reason": data.get("freeze_override_reason", ""),
        }


class SetActionConfirmForm(forms.Form):
    """A reviewed Set Action, carried in hidden fields from its review to its confirmation.

    The token travels sealed (see jobs.tokens.token_seal), or `stored_credential` says the
    cluster's stored credential is used and there is none; the customer IDs as the operator
    typed them, or those of their CSV file one a line.
    """

    action = forms.TypedChoiceField(
        choices=Job.Action.choices, coerce=int, widget=forms.HiddenInput
    )
    cluster = forms.ModelChoiceField(
        queryset=Cluster.objects.filter(is_active=True), widget=forms.HiddenInput
    )
    cids = forms.CharField(widget=forms.HiddenInput)
    from_csv = forms.BooleanField(required=False, widget=forms.HiddenInput)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)
    stored_credential = forms.BooleanField(required=False, widget=forms.HiddenInput)
    seal = forms.CharField(required=False, widget=forms.HiddenInput)
    freeze_override_reason = forms.CharField(
        required=False, max_length=500, widget=forms.HiddenInput
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.token = None

    def clean(self):
        cleaned = super().clean()
        key, seal = cleaned.get("idempotency_key"), cleaned.get("seal")
        if cleaned.get("stored_credential"):
            return cleaned
        if not seal:
            self.add_error("seal", SEAL_REFUSED)
        elif key:
            try:
                self.token = token_unseal(seal, user_id=self.user.pk, key=key)
            except InvalidToken:
                self.add_error("seal", SEAL_REFUSED)
        return cleaned

    def submission(self) -> dict:
        """The arguments for jobs.services.job_submit."""
        data = self.cleaned_data
        return {
            "action": data["action"],
            "cluster": data["cluster"],
            "cids": data["cids"],
            "token": self.token,
            "stored_credential": data["stored_credential"],
            "idempotency_key": data["idempotency_key"],
            "freeze_override_reason": data["freeze_override_reason"],
        }


def _stored_credential(user, job: Job | None) -> bool:
    """Whether a retry of `job` by `user` uses the cluster's stored credential (no token)."""
    return (
        user is not None
        and job is not None
        and job.cluster_id is not None
        and stored_credential_usable(user=user, action=job.action, cluster=job.cluster)
    )


class RetryForm(forms.Form):
    """A retry of a job (or of a batch's failed parts, all of one action and cluster). Given
    the `user` and that `job`, it asks for no token where the user may use the cluster's
    stored credential (`stored_credential`), which the retry then uses. A valid one is
    reviewed, then confirmed (RetryConfirmForm); `token_missing` says why the token is asked
    again when a confirmation was refused."""

    retry_token = forms.CharField(
        label="Cluster API token",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
    )
    confirm_unknown = forms.BooleanField(
        required=False,
        label="I checked the cluster: this job's action was not applied, or applying it "
        "again is safe.",
    )
    confirm_again = forms.BooleanField(
        required=False,
        label="This job was already retried: run its customers again anyway.",
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)

    def __init__(
        self, *args, user=None, job: Job | None = None, token_missing: str | None = None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["idempotency_key"].initial = uuid.uuid4().hex
        self.stored_credential = _stored_credential(user, job)
        if self.stored_credential:
            del self.fields["retry_token"]
        elif token_missing:
            self.fields["retry_token"].error_messages["required"] = token_missing

    def checked(self) -> dict:
        """The arguments for jobs.services' retry previews (and the retries, with
        `ip_address`)."""
        data = self.cleaned_data
        return {
            "token": data.get("retry_token") or None,
            "stored_credential": self.stored_credential,
            "confirm_unknown": data["confirm_unknown"],
            "confirm_again": data["confirm_again"],
            "idempotency_key": data["idempotency_key"],
        }


class RetryConfirmForm(forms.Form):
    """A reviewed retry, carried in hidden fields from its review to its confirmation: the
    token sealed (see jobs.tokens.token_seal) for this user and idempotency key, unless the
    cluster's stored credential is used (decided again here from `user` and `job`)."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)
    seal = forms.CharField(required=False, widget=forms.HiddenInput)
    confirm_unknown = forms.BooleanField(required=False, widget=forms.HiddenInput)
    confirm_again = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user, job: Job | None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.stored_credential = _stored_credential(user, job)
        self.token = None

    def clean(self):
        cleaned = super().clean()
        key, seal = cleaned.get("idempotency_key"), cleaned.get("seal")
        if self.stored_credential or not key:
            return cleaned
        try:
            self.token = token_unseal(seal or "", user_id=self.user.pk, key=key)
        except InvalidToken:
            self.add_error("seal", SEAL_REFUSED)
        return cleaned

    def checked(self) -> dict:
        """The arguments for jobs.services.job_retry and batch_retry, but `ip_address`."""
        data = self.cleaned_data
        return {
            "token": self.token,
            "stored_credential": self.stored_credential,
            "confirm_unknown": data["confirm_unknown"],
            "confirm_again": data["confirm_again"],
            "idempotency_key": data["idempotency_key"],
        }

    def again(self) -> dict:
        """What the retry form is filled in with when this confirmation is refused."""
        return {
            name: value
            for name in ("idempotency_key", "confirm_unknown", "confirm_again")
            if (value := self.cleaned_data.get(name, self.data.get(name)))
        }


class JobFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *Job.Status.choices], required=False)
    action = forms.TypedChoiceField(
        choices=[("", "Any action"), *Job.Action.choices], coerce=int, required=False
    )
    cluster = forms.ModelChoiceField(
        queryset=Cluster.objects.all(), required=False, empty_label="Any cluster"
    )
    operator = forms.ModelChoiceField(
        # Users who have jobs: one index probe per user (EXISTS on job_user_created_idx),
        # where a DISTINCT over the join would read every job.
        queryset=get_user_model()
        .objects.filter(Exists(Job.objects.filter(user=OuterRef("pk"))))
        .order_by("username"),
        to_field_name="username",
        required=False,
        empty_label="Any operator",
    )
    created_from = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From"
    )
    created_to = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To"
    )
    # When the job ended, to the second: the Overview's bars link here with their bin's bounds.
    ended_from = forms.DateTimeField(required=False, label="Ended from", widget=forms.HiddenInput)
    ended_to = forms.DateTimeField(required=False, label="Ended before", widget=forms.HiddenInput)
    q = forms.CharField(
        required=False,
        max_length=100,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Job id or customer ID"}),
    )

    def __init__(self, *args, may_see_others: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not may_see_others:
            del self.fields["operator"]

    def clean(self) -> dict:
        data = super().clean()
        problem = day_range_error(data.get("created_from"), data.get("created_to"), "job")
        if problem:
            self.add_error("created_to", problem)
        start, end = data.get("ended_from"), data.get("ended_to")
        if start and end and end <= start:
            self.add_error(
                "ended_to",
                f"“Ended before” ({end.isoformat()}) is not after “Ended from” "
                f"({start.isoformat()}): no job could match.",
            )
        return data

    def ended(self) -> tuple[datetime | None, datetime | None] | None:
        """The bounds of the ended filter when one is given and valid, else None."""
        if not self.is_bound or not self.is_valid():
            return None
        bounds = (self.cleaned_data.get("ended_from"), self.cleaned_data.get("ended_to"))
        return bounds if any(bounds) else None

    def filter(self, jobs):
        """The jobs that match every filter given (dates are whole days, in TIME_ZONE; the
        ended bounds are moments: from inclusive, before exclusive)."""
        data = self.cleaned_data
        if data.get("status"):
            jobs = jobs.filter(status=data["status"])
        if data.get("action") not in (None, ""):
            jobs = jobs.filter(action=data["action"])
        if data.get("cluster"):
            jobs = jobs.filter(cluster=data["cluster"])
        if data.get("operator"):
            jobs = jobs.filter(user=data["operator"])
        jobs = created_on_days(jobs, data.get("created_from"), data.get("created_to"))
        if data.get("ended_from"):
            jobs = jobs.filter(finished_at__gte=data["ended_from"])
        if data.get("ended_to"):
            jobs = jobs.filter(finished_at__lt=data["ended_to"])
        return jobs


class JobReviewForm(forms.Form):
    """What someone found when they looked at a job with an unknown outcome (optional)."""

    note = forms.CharField(
        label="What you found (optional)",
        required=False,
        max_length=MAX_REVIEW_NOTE,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For example: the cluster shows the action applied to every customer.",
    )


MAX_COMMENT = 1000


def _one_line(value: str) -> None:
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise ValidationError("A comment is one line of text, without control characters.")


class ApprovalDecisionForm(forms.Form):
    """An approver's decision on a request: approve or deny, with a comment (required to
    deny, which the service checks too)."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("deny", "Deny")])
    comment = forms.CharField(
        required=False,
        max_length=MAX_COMMENT,
        validators=[_one_line],
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text="Optional to approve; required to deny: say why.",
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("decision") == "deny" and not data.get("comment", "").strip():
            self.add_error("comment", "Say why the request is denied.")
        return data
