"""Student trainers (CPU encoder classifiers; causal-LM students are trained elsewhere)."""
