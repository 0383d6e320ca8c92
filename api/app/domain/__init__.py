"""Pure business rules shared by every backend, so each one gives the same answers."""
