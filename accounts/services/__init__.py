"""Signing people in: through the company's identity provider, or by password."""
