"""Chat datasets: a prompt column of ``{"role", "content"}`` messages is a conversation, rendered by
the model's chat template (a system turn included); any other value that is not text fails in one
line naming the column, the row and the type."""

import json
import shutil

import pytest

from pytest_llmperf.model import builtin

ONE_CASE = ("--llmperf-strategies=manual", "--llmperf-batch-sizes=1")
SYSTEM = "Extract the food and drink."
SEES_THE_CONVERSATION = f'''
def test_throughput(llmperf, strategy, batch_size):
    first = llmperf.workload.prompts[0]
    assert llmperf.workload.texts[0] == (
        "<|bos|><|system|>\\n{SYSTEM}<|end|>\\n<|user|>\\n" + first[1]["content"] + "<|end|>\\n<|assistant|>\\n")
    llmperf.benchmark(strategy, batch_size)
'''


def write_rows(path, cells, column="messages"):
    path.write_text("".join(json.dumps({column: cell}) + "\n" for cell in cells))
    return path


def conversations(system=SYSTEM, count=40):
    return [[{"role": "system", "content": system}, {"role": "user", "content": f"For lunch I had soup number {i}."}]
            for i in range(count)]


def test_a_column_of_messages_is_a_conversation_with_its_system_turn_and_part_of_the_identity(run_suite, pytester):
    """The built-in template renders every role; the saved identity changes with the system turn alone."""
    identities = []
    for name, system in (("chat.jsonl", SYSTEM), ("chat2.jsonl", "List the drinks only.")):
        path = write_rows(pytester.path / name, conversations(system))
        result = run_suite(f"--llmperf-dataset={path}", "--llmperf-prompt-column=messages", *ONE_CASE,
                           "--benchmark-json=bench.json", suite=SEES_THE_CONVERSATION.replace(SYSTEM, system))
        result.assert_outcomes(passed=1)
        info = json.loads((pytester.path / "bench.json").read_text())["benchmarks"][0]["extra_info"]
        assert info["num_samples"] == 4 and info["generated_tokens"] > 0
        identities.append(info["identity"]["prompts"])
    assert identities[0] != identities[1]


@pytest.mark.parametrize("cells, line", [
    ([225 + i for i in range(40)], "prompt column 'text', row 0 is int 2*, not a prompt: a string or a list of "
                                   '{"role", "content"} messages'),
    ([{"question": f"soup {i}"} for i in range(40)], "prompt column 'text', row 0 is dict {'question': 'soup *'}, "
                                                     "not a prompt: *"),
    ([[{"role": "user"}] for _ in range(40)], "prompt column 'text', row 0, message 0: 'content' is missing"),
], ids=["int", "dict", "message-without-content"])
def test_a_prompt_that_is_neither_text_nor_messages_fails_in_one_line_naming_column_row_and_type(
        run_suite, pytester, cells, line):
    path = write_rows(pytester.path / "rows.jsonl", cells, column="text")
    result = run_suite(f"--llmperf-dataset={path}", "--llmperf-prompt-column=text", *ONE_CASE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"dataset '{path}' split 'test': {line}"])
    result.stdout.no_fnmatch_line("*Traceback*")


def model_with_template(pytester, template: str | None):
    """The built-in model with another chat template (None: without one)."""
    path = pytester.path / "model"
    shutil.copytree(builtin.MODEL_DIR, path)
    (path / "chat_template.jinja").unlink()
    if template is not None:
        (path / "chat_template.jinja").write_text(template)
    return path


ROLE_TURNS = "{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}"
DROPS_SYSTEM = ("{{ bos_token }}{% for message in messages %}{% if message['role'] != 'system' %}" + ROLE_TURNS
                + "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}")
REFUSES_SYSTEM = ("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
                  "{% endif %}" + DROPS_SYSTEM)


def test_a_chat_template_that_drops_the_system_turn_is_said(run_suite, pytester):
    model = model_with_template(pytester, DROPS_SYSTEM)
    path = write_rows(pytester.path / "chat.jsonl", conversations())
    result = run_suite(f"--llmperf-model={model}", f"--llmperf-dataset={path}", "--llmperf-prompt-column=messages",
                       *ONE_CASE, "-W", "default")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*llmperf: the model's chat template leaves out 4 of 8 messages in prompt column "
                                 "'messages' (the first: row 0, role 'system'); the model does not see them*"])


@pytest.mark.parametrize("template, line", [
    (REFUSES_SYSTEM, "the model's chat template cannot render prompt column 'messages', row 0: System role not "
                     "supported"),
    (None, "prompt column 'messages' holds conversations, but the model's tokenizer has no chat template to render "
           "them"),
], ids=["template-refuses-system", "no-template"])
def test_conversations_the_model_cannot_render_fail_in_one_line(run_suite, pytester, template, line):
    model = model_with_template(pytester, template)
    path = write_rows(pytester.path / "chat.jsonl", conversations())
    result = run_suite(f"--llmperf-model={model}", f"--llmperf-dataset={path}", "--llmperf-prompt-column=messages",
                       *ONE_CASE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([line])
    result.stdout.no_fnmatch_line("*Traceback*")
