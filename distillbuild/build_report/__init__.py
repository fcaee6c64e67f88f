"""`distill report`: a build as one self-contained HTML page (inline SVG charts, no network)."""
