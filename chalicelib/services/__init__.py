"""Domain services: the logic between the thin routes and the repositories."""
