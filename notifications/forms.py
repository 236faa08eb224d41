"""The form of the Notifications page: it parses input; the rules live in
notifications.preferences."""

from __future__ import annotations

from django import forms
from django.db.models import Q

from jobs.models import Cluster, Job
from lib.forms import ModelChoicesField
from notifications.models import NotificationPreference
from notifications.preferences import ApprovalsOffered


class EmailChangeForm(forms.Form):
    """The new address; notifications.email_change checks it."""

    email = forms.CharField(
        label="New e-mail address",
        max_length=1000,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        help_text="A link is sent to it; e-mails go there once you follow the link.",
        error_messages={"required": "Type the new address."},
    )


class ClusterChoices(ModelChoicesField):
    def label_from_instance(self, obj: Cluster) -> str:
        return obj.name if obj.is_active else f"{obj.name} (inactive)"


class NotificationPreferenceForm(forms.Form):
    """Every field of jobs, whoever the user: one who may not see everyone's jobs and sends
    `all_jobs`, clusters or actions anyway is refused by the service, not ignored. The
    approvals' fields only for those they concern (`approvals`)."""

    own_jobs = forms.BooleanField(label="E-mail me when one of my jobs fails", required=False)
    all_jobs = forms.BooleanField(label="E-mail me when anyone's job fails", required=False)
    clusters = ClusterChoices(
        queryset=Cluster.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None chosen: every cluster.",
        error_messages={
            "invalid_choice": "A cluster you chose is no longer offered (it was deactivated "
            "or removed): choose again.",
            "invalid_pk_value": "“%(pk)s” is not a cluster.",
        },
    )
    actions = forms.TypedMultipleChoiceField(
        choices=Job.Action.choices,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None chosen: every action.",
        error_messages={"invalid_choice": "“%(value)s” is not an action."},
    )
    successes = forms.BooleanField(
        label="Also e-mail me when those jobs succeed",
        required=False,
        help_text="Every ended job of the kinds chosen above, not only the failed ones.",
    )
    approval_requests = forms.BooleanField(
        label="E-mail me when a request waits for my approval",
        required=False,
        help_text="When it is made, a reminder at half its wait, and when it no longer waits.",
    )
    approval_decisions = forms.BooleanField(
        label="E-mail me when a request of mine is approved, denied, expires or is withdrawn",
        required=False,
    )

    def __init__(
        self, *args, preference: NotificationPreference, approvals: ApprovalsOffered, **kwargs
    ) -> None:
        chosen = list(preference.clusters.all()) if not preference._state.adding else []
        initial = {
            "own_jobs": preference.own_jobs,
            "all_jobs": preference.all_jobs,
            "successes": preference.successes,
            "clusters": chosen,
            "actions": preference.actions,
            "approval_requests": preference.approval_requests,
            "approval_decisions": preference.approval_decisions,
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.preference = preference
        # Approvals' choices that do not concern the user are left out, and so kept as saved.
        if not approvals.requests:
            del self.fields["approval_requests"]
        if not approvals.decisions:
            del self.fields["approval_decisions"]
        # Active clusters, and any the user chose that was deactivated since: dropped from
        # the choices, it would leave the list empty on the next save, which means every
        # cluster.
        self.fields["clusters"].queryset = Cluster.objects.filter(
            Q(is_active=True) | Q(pk__in=[cluster.pk for cluster in chosen])
        )
