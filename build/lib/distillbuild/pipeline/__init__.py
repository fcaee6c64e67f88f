"""The build pipeline: what a stage declares (`contract`), the stages in order (`stage_list`),
the spec compiled into `dvc.yaml` (`compile`), one stage run (`runner`), and what the gate
records (`lineage`, `model_card`). The stages themselves are `pipeline/stages/`, one module each."""
