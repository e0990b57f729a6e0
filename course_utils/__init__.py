"""Shared helpers of the course."""
