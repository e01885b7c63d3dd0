"""The scripts that build and verify the shipped model and dataset (``model/builtin/files``):
``python -m pytest_llmperf.recipes.dataset``, ``...recipes.train`` and ``...recipes.verify``. Never
imported by the plugin.
"""
