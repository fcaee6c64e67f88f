"""Exporting a trained student for serving outside PyTorch (the `export` stage's engine)."""
