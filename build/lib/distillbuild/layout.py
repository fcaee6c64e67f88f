"""Where each stage writes, relative to the spec's directory. The compiler and the stages
both read these names, so dvc.yaml and the code can never disagree about a path."""

BUILD = "build"

SEED_INPUTS = f"{BUILD}/seed/inputs.jsonl"  # generated inputs the teacher answers beside data.inputs
SEED_DROPPED = f"{BUILD}/seed/dropped.jsonl"
SEED_RESPONSES = f"{BUILD}/seed/responses.jsonl"  # the generator's raw replies by cache key (as the teacher's)
SEED_REPORT = f"{BUILD}/seed/report.json"

TEACHER_ANSWERS = f"{BUILD}/teacher/answers.jsonl"
TEACHER_HELDOUT = f"{BUILD}/teacher/heldout_answers.jsonl"
TEACHER_REPORT = f"{BUILD}/teacher/report.json"
TEACHER_CONTENT_FREE = f"{BUILD}/teacher/content_free.jsonl"  # contextual calibration's content-free answers
TEACHER_RESPONSES = (
    f"{BUILD}/teacher/responses.jsonl"  # the raw answers by cache key: a clone reproduces without asking
)

FILTER_KEPT = f"{BUILD}/filter/kept.jsonl"
FILTER_REJECTED = f"{BUILD}/filter/rejected.jsonl"
FILTER_REPORT = f"{BUILD}/filter/report.json"
FILTER_THRESHOLD_CURVE = f"{BUILD}/filter/threshold_curve.json"  # precision/kept by threshold, on labelled rows

DATASET_DIR = f"{BUILD}/dataset"
DATASET_TRAIN = f"{DATASET_DIR}/train.jsonl"
DATASET_VAL = f"{DATASET_DIR}/val.jsonl"
DATASET_REPORT = f"{DATASET_DIR}/report.json"

CONFIG_DIR = f"{BUILD}/configure"
LOCAL_TRAINER_CONFIG = f"{CONFIG_DIR}/trainer.json"
AXOLOTL_CONFIG = f"{CONFIG_DIR}/axolotl.yaml"

MODEL_DIR = f"{BUILD}/model"
TRAIN_HISTORY = f"{BUILD}/train/history.json"
TRAIN_REPORT = f"{BUILD}/train/report.json"

PREFERENCE_DIR = f"{BUILD}/preference"
PAIRS = f"{PREFERENCE_DIR}/pairs.jsonl"  # (prompt, chosen: the teacher's answer, rejected: the SFT student's)
PAIRS_REPORT = f"{PREFERENCE_DIR}/pairs_report.json"
PREFERENCE_BASE = f"{PREFERENCE_DIR}/sft"  # the SFT adapter merged into its base: DPO's start and reference
PREFERENCE_CONFIG = f"{PREFERENCE_DIR}/config"  # axolotl.yaml (rl: dpo) and its plan
PREFERENCE_MODEL = f"{PREFERENCE_DIR}/model"  # the DPO adapter over PREFERENCE_BASE
PREFERENCE_REPORT = f"{PREFERENCE_DIR}/train_report.json"

METRICS = f"{BUILD}/evaluate/metrics.json"
PREDICTIONS = f"{BUILD}/evaluate/predictions.json"

DECISION = f"{BUILD}/gate/decision.json"
MODEL_CARD = f"{BUILD}/gate/model_card.md"

ROUTE_REPORT = f"{BUILD}/route/report.json"
ROUTE_CURVE = f"{BUILD}/route/curve.json"

EXPORT_DIR = f"{BUILD}/export/model"
EXPORT_REPORT = f"{BUILD}/export/report.json"

# The teacher cache lives outside every DVC output, so no `dvc repro` or `dvc gc` can
# delete a paid answer. One per repository, shared by all its pipelines.
CACHE_DIR = ".distill/cache"
# What each run measured on this machine, by report path (distillbuild/measurements.py).
RUNS_DIR = ".distill/runs"
