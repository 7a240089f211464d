"""`./dev`: bring the local ClusterGenie stack up and down, run the tests, show status and logs."""
