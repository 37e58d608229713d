"""Thin kopf registrations: parse a body into a model, ask the core, apply through kube."""
