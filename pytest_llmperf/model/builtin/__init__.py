"""Built-in offline workload: a synthetic food-extraction dataset and a tiny Llama model.

Deliberately lightweight: nothing heavy (torch, transformers, datasets) is imported here.
The shipped files are produced by ``python -m pytest_llmperf.recipes.dataset`` and
``python -m pytest_llmperf.recipes.train``; ``python -m pytest_llmperf.recipes.verify``
checks batch-invariance and quality of the model.
"""

from pathlib import Path

FILES = Path(__file__).parent / "files"
MODEL_DIR = FILES / "model"
DRAFT_DIR = FILES / "draft"  # the draft model of speculative decoding, same tokenizer (recipes/train.py --draft)
DATASET_FILE = FILES / "foodextract_synth.jsonl"
SHAPES_DIR = Path(__file__).parent / "shapes"  # published config.json files for --llmperf-model shape:NAME
PROMPT_COLUMN = "sequence"
REFERENCE_COLUMN = "label_condensed"
