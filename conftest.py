# The plugin's own tests drive small perf suites through pytest's `pytester`.
pytest_plugins = ["pytester"]
