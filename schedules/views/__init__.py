"""The schedules pages of the operator UI: saved Set Actions (saved) and their schedules
(schedule_pages). Views parse input, call schedules.services and present the result; every
page is kept by no cache (never_cache), as the jobs pages are."""
