"""Curation engine: deciding which teacher answers the student may learn from."""
