"""Machines side by side, for the report of a run that holds several (a merged run), or one with a price:
which machine does the work best, and at what cost.

* **The machines**: each one's fingerprint (device, CPU, threads, software), commit and source files.
* **The best configuration per machine**, per model and workload: the timed case with the most
  samples/s among those whose outputs equal batch size 1's (a faster case that changed the outputs
  is not a configuration to choose; when every case changed them, the fastest, marked). Its tokens/s,
  how it compares with the fastest machine, and, where ``--llmperf-price`` gives the machine's hourly
  price, the cost of a million generated tokens: ``USD per hour / (tokens/s x 3600) x 10**6``.

A price is per hour of one device, as clouds bill a GPU (for a CPU run, the machine), and is matched
against the device's name (``environment.device_name``): ``A10G=1.01`` prices ``1x NVIDIA A10G``,
word by word, so ``L4`` does not price an ``L40S``; the key with the most words wins where several
match (``A100-80GB`` before ``A100``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..measure.environment import device_name
from .saved import Run, SavedRunError, config_id
from .tables import UNSTEADY, batch_size_label, unsteady

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class Choice:
    """The best configuration of one machine for one model and workload."""

    machine: str
    info: dict  # its extra_info
    outputs_kept: bool  # its outputs equal bs=1's (False: every case of this machine changed them)
    price: tuple[str, float] | None  # (the --llmperf-price name that matched, USD per hour)

    @property
    def cost_per_million_tokens(self) -> float | None:
        if self.price is None or not self.info.get("tokens_per_s"):
            return None
        return self.price[1] / (self.info["tokens_per_s"] * SECONDS_PER_HOUR) * 1e6


def device_of(run: Run, machine: str) -> str:
    environment = run.machines[machine].environment
    return device_name(environment["hardware"]) if environment.get("hardware") else machine


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def price_for(device: str, prices) -> tuple[str, float] | None:
    """The ``(name, USD per hour)`` of ``prices`` whose name's words appear in ``device``'s name, in
    order and next to each other; the one with the most words where several do."""
    words = _words(device)
    found = [(name, usd) for name, usd in prices or () if _contains(words, _words(name))]
    return max(found, key=lambda pair: len(_words(pair[0])), default=None)


def _contains(words: list[str], part: list[str]) -> bool:
    return bool(part) and any(words[i:i + len(part)] == part for i in range(len(words) - len(part) + 1))


def labels(run: Run) -> dict[str, str]:
    """A short name per machine of ``run`` for the figures (``short_names``)."""
    return short_names({machine: part.environment.get("hardware") or {} for machine, part in run.machines.items()})


def short_names(hardware: dict[str, dict]) -> dict[str, str]:
    """A short name per machine (``hardware``: machine -> its fingerprint's hardware): its GPUs
    (``1x NVIDIA A10G``), or for a CPU run its whole name (the CPU model and count); the whole name
    where two machines would share the short one."""
    short = {machine: device_name(fingerprint) if fingerprint.get("device_type") == "cuda" else machine
             for machine, fingerprint in hardware.items()}
    clashes = {label for label in short.values() if list(short.values()).count(label) > 1}
    return {machine: machine if label in clashes else label for machine, label in short.items()}


def only(run: Run, machine: str) -> Run:
    """The cases of one machine of ``run``: its name, or a part of its short name (``L4``), or of its
    name, that names one machine only."""
    names, short = list(run.machines), labels(run)
    wanted = machine.lower()
    chosen = [name for name in names if name == machine] or \
        [name for name in names if wanted in short[name].lower()] or [name for name in names if wanted in name.lower()]
    if len(chosen) != 1:
        raise SavedRunError(f"--machine {machine!r} {'matches no' if not chosen else 'matches more than one'} machine "
                            f"of {run.source}; its machines: {'; '.join(names)}")
    return Run([record for record in run.records if record["machine"] == chosen[0]], run.machine_info,
               run.commit_info, run.datetime, run.source, run.parts)


def workloads(records: list[dict]) -> dict[tuple, list[dict]]:
    """Timed records per model and workload: the cases whose throughput can be set side by side."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record["timed"]:
            info = record["extra_info"]
            groups.setdefault((info["model"], info["workload_hash"]), []).append(record)
    return groups


def workload_title(info: dict) -> str:
    if info.get("prompt_tokens") is not None:
        work = f"synthetic, {info['num_samples']} prompts x {info['prompt_tokens']} tokens"
    else:
        work = f"{info['dataset']}:{info['split']}, {info['num_samples']} samples"
    return f"{info['model']} | {work}, max_new_tokens {info['max_new_tokens']}"


def best(records: list[dict], run: Run, prices) -> list[Choice]:
    """Per machine, its best configuration among ``records`` (one model and workload), fastest first."""
    by_machine: dict[str, list[dict]] = {}
    for record in records:
        by_machine.setdefault(record["machine"], []).append(record["extra_info"])
    choices = []
    for machine, infos in by_machine.items():
        kept = [info for info in infos if info.get("exact_match_to_bs1") == 1]
        chosen = max(kept or infos, key=lambda info: info["samples_per_s"])
        choices.append(Choice(machine, chosen, bool(kept), price_for(device_of(run, machine), prices)))
    return sorted(choices, key=lambda choice: -choice.info["samples_per_s"])


def configuration(info: dict) -> str:
    return f"{config_id(info)} {info['strategy']} bs={batch_size_label(info)}"


def markdown(run: Run, prices) -> list[str]:
    """The report's "Machines" section: the fingerprints, then the best configuration per machine
    (with its cost where a price matches), per model and workload."""
    lines = ["## Machines", "", *_fingerprints(run), ""]
    names = labels(run)
    unpriced: set[str] = set()
    for records in workloads(run.records).values():
        choices = best(records, run, prices)
        fastest = choices[0].info["samples_per_s"]
        priced = [choice for choice in choices if choice.cost_per_million_tokens is not None]
        cheapest = min(priced, key=lambda choice: choice.cost_per_million_tokens, default=None)
        lines += [f"**Best configuration per machine: {workload_title(choices[0].info)}**", "",
                  "| machine | best configuration | samples/s | tokens/s | vs fastest | outputs as bs=1 | USD/hour "
                  "| USD per 1M tokens |", "|---|---|---|---|---|---|---|---|"]
        for choice in choices:
            info = choice.info
            mark = UNSTEADY if unsteady(info) else ""
            cost = choice.cost_per_million_tokens
            if choice.price is None:
                unpriced.add(choice.machine)
            lines.append(
                f"| {names[choice.machine]} | {configuration(info)} | {mark}{info['samples_per_s']:,.2f} "
                f"| {mark}{info['tokens_per_s']:,.1f} | {info['samples_per_s'] / fastest:.2f}x "
                f"| {'identical' if choice.outputs_kept else 'changed (no configuration kept them)'} "
                f"| {f'{choice.price[1]:,.2f}' if choice.price else '-'} "
                f"| {'-' if cost is None else f'{mark}{cost:,.4g}'}{' (cheapest)' if choice is cheapest and len(priced) > 1 else ''} |")
        lines.append("")
    lines += _price_notes(run, prices, unpriced)
    if any(unsteady(record["extra_info"]) for record in run.records if record["timed"]):
        lines.append(f"{UNSTEADY}: from rounds that were not steady; the figure is uncertain.")
        lines.append("")
    return lines


def _price_notes(run: Run, prices, unpriced: set[str]) -> list[str]:
    notes = []
    if unpriced:
        notes.append("No price for " + "; ".join(f"{device_of(run, machine)}" for machine in sorted(unpriced))
                     + ": give `--llmperf-price NAME=USD_PER_HOUR` (or `pytest-llmperf report --price`) for its "
                     "cost per million tokens.")
    devices = [device_of(run, machine) for machine in run.machines]
    unused = [name for name, _ in prices or () if not any(price_for(device, [(name, 1.0)]) for device in devices)]
    if unused:
        notes.append(f"A price matches no machine here: {', '.join(unused)}.")
    if prices:
        notes.append("Cost per million generated tokens: the device's price per hour over the tokens it generates "
                     "in an hour at the best configuration's median round.")
    return [*(f"{note}  " for note in notes), ""] if notes else []


def _fingerprints(run: Run) -> list[str]:
    names = labels(run)
    lines = ["| machine | full name | threads | software | commit | measured | from |", "|---|---|---|---|---|---|---|"]
    for machine, first in run.machines.items():
        parts = [part for part in run.parts if part.machine == machine]
        hardware, software = first.environment.get("hardware") or {}, first.environment.get("software") or {}
        threads = hardware.get("torch_num_threads")
        commits = dict.fromkeys(str((part.commit_info or {}).get("id") or "?")[:12] for part in parts)
        dates = sorted(str(part.datetime)[:19] for part in parts if part.datetime)
        sources = dict.fromkeys(part.source for part in parts)
        versions = ", ".join(f"{name} {software[name]}" for name in ("torch", "transformers") if software.get(name))
        lines.append(f"| {names[machine]} | {machine} | {threads if threads is not None else '-'} | {versions or '-'} "
                     f"| {', '.join(commits)} | {dates[-1] if dates else '-'} "
                     f"| {', '.join(sources) if len(sources) <= 3 else f'{len(sources)} files'} |")
    return lines
