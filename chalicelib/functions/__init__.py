"""Entry logic of the non-HTTP functions, one module per function, imported only by that function."""
