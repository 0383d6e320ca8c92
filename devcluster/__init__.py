"""A whole migration on one machine: PostgreSQL, Prometheus, the API as a process, the
Kubernetes API emulator, a controller that plays Deployments and Jobs, and traffic.

The demo (`python -m demo`) and the end-to-end tests compose these parts; nothing here
is a mock of the project's own code: every part is the real program, started locally.
"""
