"""Pydantic models of every execflow resource; the single source of the CRD schemas."""
