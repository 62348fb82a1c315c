"""Repositories: every SQL statement the domain runs lives in this package."""
