"""Pydantic models at every boundary: the HTTP API (camelCase JSON) and the caller passed into services."""
