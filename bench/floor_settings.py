"""The dashboard's settings for bench/http_floor.py's server alone: production's, with the
bench's URLs (floor_urls: the product's and a view that answers a constant). With
BENCH_FLOOR_BARE=true, no middleware at all, to see what the middleware costs. Never the
product's: the server loads it only when the bench names it (DJANGO_SETTINGS_MODULE)."""

import os

from tmsdash.settings import *  # noqa: F403 (production's settings, every one)

ROOT_URLCONF = "floor_urls"
if os.environ.get("BENCH_FLOOR_BARE") == "true":
    MIDDLEWARE = []
