"""Instructor-only reference code (full solutions of graded names): never released, never in the book."""
