"""Forms of the schedules pages: they parse input; the rules live in schedules.services.

A saved Set Action is typed as a Set Action is (jobs.forms.SetActionForm: the actions and
clusters the run grants offer, customer IDs typed or from a CSV file), without the token: it
is asked when the Set Action runs. A schedule is typed in local time in its zone; the
presets are written out as the RRULE the service checks.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import available_timezones

from django import forms
from django.conf import settings

from jobs.forms import SetActionForm
from jobs.models import Cluster, Job
from lib import recurrence
from schedules.models import MAX_GRACE_SECONDS, SavedSetAction

ZONES = sorted(available_timezones())
WEEKDAYS = [
    ("MO", "Monday"),
    ("TU", "Tuesday"),
    ("WE", "Wednesday"),
    ("TH", "Thursday"),
    ("FR", "Friday"),
    ("SA", "Saturday"),
    ("SU", "Sunday"),
]
DEFAULT_GRACE_MINUTES = 15


class SavedSetActionForm(SetActionForm):
    """A Set Action to save under a name: the Set Action form's fields but the token and
    idempotency key. `saved` (when editing) keeps its own action and cluster offered even when
    no grant covers them any more, so that the form shows what it holds and the service says
    why it no longer runs."""

    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"autocomplete": "off"}))

    field_order = ["name", "action", "cluster", "cids", "csv_file"]

    def __init__(self, *args, user, saved: SavedSetAction | None = None, **kwargs) -> None:
        super().__init__(*args, user=user, **kwargs)
        # The token (or stored credential) and the idempotency key belong to a run.
        for field in set(self.fields) - set(self.field_order):
            del self.fields[field]
        self.fields["cids"].help_text += " Saved as given; checked again at every run."
        if saved is not None:
            if saved.action not in self.choices.actions:
                self.fields["action"].choices += [(saved.action, Job.Action(saved.action).label)]
            if saved.cluster_id:
                self.fields["cluster"].queryset = self.fields["cluster"].queryset | (
                    Cluster.objects.filter(pk=saved.cluster_id)
                )

    def clean(self) -> dict:
        # The Set Action form's rules for the customers, not its rules for a run's token or
        # stored credential: a saved Set Action keeps neither.
        cleaned = forms.Form.clean(self)
        self._check_customers(cleaned)
        return cleaned

    def saving(self) -> dict:
        """The arguments for saved_set_action_create and saved_set_action_edit."""
        data = self.cleaned_data
        cids, positions = self.customers()
        return {
            "name": data["name"],
            "action": data["action"],
            "cluster": data["cluster"],
            "cids": cids,
            "cid_positions": positions,
        }


class WallDateTimeField(forms.DateTimeField):
    """A date and time as the wall clock reads it (naive): the form, not the site's zone,
    says which zone it is in."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, dt.datetime):
            return value.replace(tzinfo=None)
        return forms.fields.BaseTemporalField.to_python(self, value)


class ScheduleForm(forms.Form):
    """A schedule as the operator types it: once at a local date and time, or on a
    recurrence (a preset at a local time of day, or a raw RRULE), in a time zone."""

    KIND_CHOICES = [("once", "Once"), ("recurring", "Recurring")]
    REPEAT_CHOICES = [
        ("weekdays", "Every weekday (Monday to Friday)"),
        ("daily", "Every day"),
        ("weekly", "Every week on one day"),
        ("rrule", "Advanced: an RRULE"),
    ]

    saved_set_action = forms.ModelChoiceField(
        queryset=SavedSetAction.objects.none(),
        label="Saved Set Action",
        empty_label="Choose a saved Set Action",
        error_messages={"required": "Choose the saved Set Action to run."},
    )
    kind = forms.ChoiceField(
        choices=KIND_CHOICES, widget=forms.RadioSelect, initial="recurring", label="Runs"
    )
    run_at = WallDateTimeField(
        required=False,
        label="Date and time (local, in the time zone below)",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Once only: when the clocks go back, a time that happens twice runs the "
        "first time.",
    )
    repeat = forms.ChoiceField(choices=REPEAT_CHOICES, initial="weekdays", label="Repeats")
    at_time = forms.TimeField(
        required=False,
        label="At (local time, HH:MM)",
        input_formats=["%H:%M"],
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    weekday = forms.ChoiceField(choices=WEEKDAYS, required=False, label="On (weekly)")
    rrule = forms.CharField(
        required=False,
        max_length=1000,
        label="RRULE (advanced)",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "spellcheck": "false",
                "placeholder": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=6;BYMINUTE=0",
            }
        ),
        help_text="RFC 5545, without DTSTART; at most hourly. Its times are local, in the "
        "time zone below.",
    )
    timezone = forms.ChoiceField(
        choices=[(name, name) for name in ZONES],
        label="Time zone",
        error_messages={
            "invalid_choice": "Unknown time zone %(value)s: choose an IANA zone, such as "
            "Europe/Berlin."
        },
        # The page's script sets it to the browser's zone on a new form.
        widget=forms.Select(attrs={"data-browser-zone": ""}),
    )
    missing_dst = forms.ChoiceField(
        choices=[
            ("run", "Run at the first moment after the gap (03:00 for 02:30)"),
            ("skip", "Skip that day's run"),
        ],
        initial="run",
        widget=forms.RadioSelect,
        label="A time that does not exist (clocks go forward)",
        help_text="In spring the clocks jump forward: in Europe/Berlin on 28 March 2027, "
        "02:00 becomes 03:00, so 02:30 does not exist that day. A time that happens twice "
        "when the clocks go back (02:30 on 31 October 2027) always runs once, the first time.",
    )
    missed = forms.ChoiceField(
        choices=[
            ("run_latest", "Run the latest missed run once, if it is within the grace period"),
            ("skip", "Skip missed runs"),
        ],
        initial="run_latest",
        widget=forms.RadioSelect,
        label="A run missed while no scheduler ran (an outage)",
        help_text="Earlier missed runs are always skipped: a night's runs never all fire late. "
        "Every skipped run is recorded with its reason.",
    )
    grace_minutes = forms.IntegerField(
        min_value=0,
        max_value=MAX_GRACE_SECONDS // 60,
        initial=DEFAULT_GRACE_MINUTES,
        label="Grace period (minutes)",
        help_text="How late a missed run may still start.",
    )
    overlap = forms.ChoiceField(
        choices=[
            ("skip", "Skip the new run (recorded)"),
            ("queue", "Queue it behind the previous run (one at most)"),
        ],
        initial="skip",
        widget=forms.RadioSelect,
        label="When the previous run has not finished",
        help_text="Still queued, running or waiting for approval: two runs never go at once.",
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["saved_set_action"].queryset = SavedSetAction.objects.filter(
            owner=user
        ).select_related("cluster")
        self.fields["timezone"].initial = settings.TIME_ZONE

    def clean(self) -> dict:
        data = super().clean()
        if data.get("kind") == "once":
            if data.get("run_at") is None and "run_at" not in self.errors:
                self.add_error("run_at", "Give the date and time it runs.")
        elif data.get("repeat") == "rrule":
            if not data.get("rrule", "").strip():
                self.add_error("rrule", "Give the rule, such as FREQ=DAILY;BYHOUR=6;BYMINUTE=0.")
        elif data.get("repeat"):
            if data.get("at_time") is None and "at_time" not in self.errors:
                self.add_error("at_time", "Give the local time it runs at (HH:MM).")
            if data.get("repeat") == "weekly" and not data.get("weekday"):
                self.add_error("weekday", "Choose the day of the week.")
        if data.get("kind") == "once" and data.get("run_at") and data.get("timezone"):
            self._check_local_time(data["run_at"], data["timezone"])
        return data

    def _check_local_time(self, wall: dt.datetime, name: str) -> None:
        """A one-off at a local time the clocks skip is refused: the operator picks one that
        exists. (A recurrence's such times follow its missing-time choice instead.)"""
        zone = recurrence.zone(name)
        first = wall.replace(tzinfo=zone, fold=0)
        if first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != wall:
            self.add_error(
                "run_at",
                f"{wall:%H:%M} does not exist on {wall:%d %b %Y} in {name}: the clocks go "
                "forward over it. Choose a time after the change.",
            )

    def rule(self) -> str:
        """The RRULE the form stands for (recurring only)."""
        data = self.cleaned_data
        if data["repeat"] == "rrule":
            return data["rrule"].strip()
        at = data["at_time"]
        hour = f"BYHOUR={at.hour};BYMINUTE={at.minute};BYSECOND=0"
        if data["repeat"] == "weekdays":
            return f"FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;{hour}"
        if data["repeat"] == "weekly":
            return f"FREQ=WEEKLY;BYDAY={data['weekday']};{hour}"
        return f"FREQ=DAILY;{hour}"

    def scheduling(self) -> dict:
        """The arguments for schedules.services.schedule_create."""
        data = self.cleaned_data
        arguments = {
            "saved_set_action": data["saved_set_action"],
            "timezone_name": data["timezone"],
            "missing_dst": data["missing_dst"],
            "missed": data["missed"],
            "grace_seconds": data["grace_minutes"] * 60,
            "overlap": data["overlap"],
        }
        if data["kind"] == "once":
            # A time that happens twice is read the first time (fold 0).
            zone = recurrence.zone(data["timezone"])
            arguments["run_at"] = data["run_at"].replace(tzinfo=zone, fold=0)
        else:
            arguments["rrule"] = self.rule()
        return arguments
