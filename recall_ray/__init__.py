"""Recall AI backend domain: configuration, ORM models, repositories, services, schemas, jobs and storage."""

__version__ = "0.1.0"
