"""One module per stage: its contract (READS, deps, outs, ...) and `run(spec)`. The order is
`pipeline/stage_list.py`."""
