"""What a build says about itself: `distill summary` (`summary`, plain text) and `distill report`
(`page` and `charts`: one self-contained HTML page, inline SVG, no network)."""
