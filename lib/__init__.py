"""Building blocks that several apps share, so that no app reaches into another's admin or views.

Nothing here has models or imports an app: `jobs`, `audit` and `legacy` import from `lib`,
never the other way round.
"""
