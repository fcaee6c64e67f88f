"""HTML and SVG building blocks for `distill report`'s page: inline SVG charts (`charts`) and
tables and values (`tables`). Below the stages, which give their own sections of the page."""
