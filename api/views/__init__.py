"""The JSON API v1, one module per resource. Views parse input, call the services (jobs.services,
api.tokens) and present the result; visibility is the operator UI's."""
