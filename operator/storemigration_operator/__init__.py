"""The StoreMigration operator: a pure planner (`core`) plus thin kopf handlers.

Named `storemigration_operator`, not `operator`, so it never shadows the standard library.
"""
