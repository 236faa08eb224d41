"""The operator UI, one module per page family. Views parse input, call jobs.services and
present the result.

Every page shows jobs or the forms that make them: none is kept by a browser or proxy cache
(never_cache: Cache-Control no-store).
"""
