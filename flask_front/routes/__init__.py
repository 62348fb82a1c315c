"""Blueprints: ``ai`` (the API), ``health`` (liveness, readiness, version), ``admin`` (metrics, OpenAPI,
docs) and ``storage`` (presigned URLs of the local object store)."""
