"""Signals accounts sends, for other apps to act on without `accounts` knowing them."""

from django.dispatch import Signal

# A break-glass user signed in with their password (TMS_BREAK_GLASS_USERS), sent inside the
# transaction that audits it, so that a receiver's writes (the admins' notices) commit or roll
# back with the audit entry. It has `user`, `at` (when), `ip_address` (where from; None when
# unknown) and `audit_entry_id` (the auth.break_glass entry's id).
break_glass_signin = Signal()
