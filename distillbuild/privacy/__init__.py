"""Personal and secret data: found by Presidio's analyzer, masked by its anonymizer, scanned for in files."""
