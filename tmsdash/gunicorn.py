"""gunicorn's configuration, the same under `make run` and in production:

    gunicorn --config python:tmsdash.gunicorn

Threaded workers (gthread) serve tmsdash.wsgi; the values come from the dashboard's settings
(TMS_WEB_BIND, TMS_WEB_PROCESSES, TMS_WEB_THREADS), so a malformed one stops the server before
it starts. SIGTERM (or one Ctrl-C under `make run`) lets requests in hand finish within
`graceful_timeout`. The dashboard logs each request itself (tmsdash.middleware), in the format
LOG_FORMAT chooses, so gunicorn's access log stays off.
"""

import gc

import tmsdash.settings as tms
from lib.malloc import malloc_tune

wsgi_app = "tmsdash.wsgi:application"
bind = [tms.TMS_WEB_BIND]
worker_class = "gthread"
workers = tms.TMS_WEB_PROCESSES
threads = tms.TMS_WEB_THREADS
graceful_timeout = 30
# Code is reloaded on change in development only.
reload = tms.DEBUG
# gunicorn's own lines (start, stop, a worker that died) in the dashboard's format.
logconfig_dict = tms.LOGGING
accesslog = None
# No control socket (gunicornc): unused, and one per user's home would clash between servers.
control_socket_disable = True


def post_worker_init(worker) -> None:
    """Once a worker has loaded the dashboard, what it loaded (modules, settings, URLs) is left
    out of the garbage collector's full passes, which otherwise walk it all again at every
    one: about one request in twenty paid 75-85 ms for that (docs/performance.md). Its
    allocator is set, before its threads start, to give back what a large request took
    (lib.malloc)."""
    gc.freeze()
    malloc_tune()
