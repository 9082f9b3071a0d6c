"""Reliability tests: faults, exhaustion, cancellation, concurrency, fuzzing and secrecy."""
