"""From records to a leaderboard: one row per task plus the scratch baseline, one column per
protocol x label budget, mean ± std of test accuracy over seeds, with the statistics that
say which differences are real.

The numbers live in a long pandas DataFrame (one row per finished cell); :class:`Leaderboard`
aggregates it and compares rows paired by seed (:mod:`sslbench._core.stats`):

* every task against scratch in each column: mean difference, 95% t interval, paired t-test
  over seeds and a two-level bootstrap over seeds and test images, Holm-corrected over all of
  a table's task-vs-scratch comparisons. A cell is marked ▲ (▼) when the task is
  significantly better (worse) than scratch by both tests; otherwise the gain is "n.s.";
* the best mean of each column against the runner-up, Holm-corrected over the table's
  columns: the winner is marked (bold) only when it is significantly better.

A cell also carries † when some of its seeds did not converge (the protocol says so: a
fine-tuning run whose best check was its last, or whose validation accuracy was still rising;
a probe that hit its iteration limit). Report formats (plugins: markdown, HTML, LaTeX, CSV, a
terminal table) render through :meth:`Leaderboard.display` and :class:`Publication`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

from ._core.budgets import FLAGS, Budget, fraction_key
from ._core.names import public_name
from .record import Record
from ._core.stats import (ALPHA, PairedResult, compare, correct_family, detectable_gain,
                          pairs_of)

__all__ = [
    'SCRATCH', 'SINGLE_SEED', 'format_seconds', 'format_p', 'Leaderboard', 'run_command',
    'Publication', 'DETECTABLE'
]

SCRATCH = "scratch"
UP, DOWN, UNCONVERGED = "▲", "▼", "†"
# the header row of each column's smallest detectable gain (Leaderboard.detectable)
DETECTABLE = "detectable gain (80% power)"
# what a table with fewer seeds than a paired test needs says instead of its statistics
SINGLE_SEED = "1 seed: gains are not tested; use --seeds 0,1,2,3,4"



def format_seconds(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def format_p(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _converged(record: dict[str, Any]) -> float:
    """1.0 / 0.0 for a protocol that says whether it converged, nan when it does not say."""
    value = (record.get("details") or {}).get("converged")
    return math.nan if value is None else float(bool(value))


def _shown(record: Any) -> Any:
    """A record with its data set named as reports show it."""
    shown = public_name(record["dataset"])
    if shown == record["dataset"]:
        return record
    if isinstance(record, Record):
        return record.replace(dataset=shown)
    return {**record, "dataset": shown}


class Leaderboard:
    """Aggregated results of one or more results directories."""

    def __init__(self, records: list[dict[str, Any]],
                 installed: Callable[[str, str], Any] | None = None, *,
                 note: str | None = None) -> None:
        """``records``: loaded records (:func:`sslbench.load_results`). ``installed(kind,
        name)``: the plugin contribution of that kind and name, or ``None``; rendering
        consults it for what records older than sslbench 0.5 lack (reference numbers, whether
        a protocol trains the backbone). Default: the plugins installed in this environment,
        loaded when first asked. ``note``: a sentence the caption ends with (where the rows
        come from, for a table of published and new rows: ``sslbench run --against``).

        A data set is grouped by the name reports show (``imagefolder:flowers``, not the
        maker's folder): records of one data set made on two machines are one table. That
        they are the same data is the sweep's business (cell ids are made of that name, and
        ``--against`` checks the contents' fingerprint)."""
        self.records = [_shown(r) for r in records]
        self.note = note
        if installed is not None and not callable(installed):
            # sslbench 0.4 passed its private plugin host here
            warnings.warn("Leaderboard(records, host) is deprecated: pass installed=, a "
                          "function (kind, name) -> plugin contribution or None",
                          DeprecationWarning, stacklevel=2)
            installed = installed.find
        self._installed_lookup = installed
        # file-name stem of plot files written beside a report (``sslbench report -o``);
        # formats that link to plots (markdown) use it
        self.asset_stem: str | None = None
        self._comparisons: dict[tuple[str, str], dict] = {}
        self._summary: pd.DataFrame | None = None
        rows = []
        # each budget's label ("10%", "20/class", "250 labels") is its column's key
        self._budgets: dict[str, Budget] = {}
        for r in self.records:
            budget = Budget.of_record(r)
            self._budgets[budget.label] = budget
            pre = r.get("pretraining") or {}
            held = pre.get("heldout") or {}
            control = pre.get("control") or {}
            ok = r["status"] == "ok"
            rows.append({
                "dataset": r["dataset"], "backbone": r["backbone"], "task": r["task"],
                "protocol": r["protocol"], "budget": budget.label, "seed": r["seed"],
                "split_seed": r.get("split_seed", 0),
                "status": r["status"], "preset": r.get("preset"),
                "test_accuracy": 100 * r["metrics"]["test_accuracy"] if ok else math.nan,
                "n_train": r.get("n_train", r.get("n_labeled")) if ok else math.nan,
                "n_val": r.get("n_val", (r.get("data") or {}).get("n_val")) if ok else math.nan,
                "n_test": (r.get("data") or {}).get("n_test"),
                "converged": _converged(r) if ok else math.nan,
                "pretrain_seconds": pre.get("seconds"),
                "pretext_accuracy": 100 * held["accuracy"] if "accuracy" in held else math.nan,
                "pretext_chance": 100 * held["chance"] if "chance" in held else math.nan,
                "pretext_near_chance": (float(held["near_chance"]) if "near_chance" in held
                                        else math.nan),
                "control_name": control.get("name"),
                "control_accuracy": (100 * control["accuracy"] if "accuracy" in control
                                     else math.nan),
                "control_chance": 100 * control["chance"] if "chance" in control else math.nan,
                "error": r.get("error")})
        self.frame = pd.DataFrame(rows, columns=[
            "dataset", "backbone", "task", "protocol", "budget", "seed", "split_seed",
            "status", "preset", "test_accuracy", "n_train", "n_val", "n_test", "converged",
            "pretrain_seconds", "pretext_accuracy", "pretext_chance", "pretext_near_chance",
            "control_name", "control_accuracy", "control_chance", "error"])

    def installed(self, kind: str, name: str) -> Any:
        """The installed plugin contribution of that name, or ``None`` (a combined row
        "a+b", a plugin no longer installed). Only records older than sslbench 0.5, which
        lack what later records carry, make a report ask."""
        if self._installed_lookup is None:
            from ._core.plugins import PluginHost
            self._installed_lookup = PluginHost.from_environment().find
        return self._installed_lookup(kind, name)

    def _installed_trains(self, protocol: str) -> bool:
        return bool(getattr(self.installed("protocol", protocol), "trains_backbone", False))

    # ------------------------------------------------------------------ aggregates
    def trained_protocols(self) -> list[str]:
        """Protocols that train the whole network (their records say so), in table order:
        scratch under the first of them on 100% of the labels is the supervised reference
        of label efficiency. Records before sslbench 0.5 do not say; for them the installed
        protocol of that name is asked."""
        trained = {r["protocol"] for r in self.records
                   if (r["protocol_trains_backbone"] if "protocol_trains_backbone" in r
                       else self._installed_trains(r["protocol"]))}
        return [p for p in self.protocols if p in trained]

    @property
    def protocols(self) -> list[str]:
        """In the order the records' sweeps listed them (then by name)."""
        order: list[str] = []
        for r in self.records:
            for p in (r.get("sweep") or {}).get("protocols", []):
                if p not in order:
                    order.append(p)
        present = self.frame["protocol"].unique()
        return sorted(present, key=lambda p: (order.index(p) if p in order else len(order), p))

    @property
    def budgets(self) -> list[str]:
        """The label budgets present, as reports print them, in table order (fractions,
        then labels per class, then labels in all; each by size)."""
        return sorted(self._budgets, key=lambda label: self._budgets[label].order)

    @property
    def fractions(self) -> list[float]:
        """The budgets that are fractions (sslbench 0.4's only kind of budget)."""
        return sorted(b.value for b in self._budgets.values() if b.kind == "fraction")

    def budget(self, label: str) -> Budget:
        return self._budgets[label]

    @property
    def tasks(self) -> list[str]:
        tasks = sorted(t for t in self.frame["task"].unique() if t != SCRATCH)
        return tasks + ([SCRATCH] if SCRATCH in set(self.frame["task"]) else [])

    @property
    def groups(self) -> list[tuple[str, str]]:
        """The (data set, backbone) pairs present; one table each."""
        pairs = self.frame[["dataset", "backbone"]].drop_duplicates()
        return [tuple(x) for x in pairs.itertuples(index=False)]

    def summary(self) -> pd.DataFrame:
        """Long form: one row per (dataset, backbone, task, protocol, budget) with mean, std
        and n over seeds of test accuracy (%), the failed and unconverged cells, the label
        budget (median training and validation images), the mean pretraining time, and, for
        task rows, the paired comparison with scratch (mean gain, 95% t interval, p-values
        before and after Holm's correction, whether it is significant) and whether the cell
        is its column's significant winner."""
        if self._summary is not None:
            return self._summary.copy()
        keys = ["dataset", "backbone", "task", "protocol", "budget"]
        ok = self.frame[self.frame["status"] == "ok"]
        agg = ok.groupby(keys).agg(mean=("test_accuracy", "mean"), std=("test_accuracy", "std"),
                                   n=("test_accuracy", "count"),
                                   n_unconverged=("converged", lambda c: int((c == 0).sum())),
                                   n_train=("n_train", "median"), n_val=("n_val", "median"))
        failed = (self.frame[self.frame["status"] != "ok"].groupby(keys).size()
                  .rename("n_failed"))
        pre = (self.frame.dropna(subset=["pretrain_seconds"])
               .drop_duplicates(["dataset", "backbone", "task", "seed", "split_seed"])
               .groupby(["dataset", "backbone", "task"])["pretrain_seconds"].mean())
        out = agg.join(failed, how="outer").reset_index()
        out["fraction"] = [self._budgets[b].value if self._budgets[b].kind == "fraction"
                           else math.nan for b in out["budget"]]
        out["_kind"] = [self._budgets[b].order[0] for b in out["budget"]]
        out["_size"] = [self._budgets[b].order[1] for b in out["budget"]]
        out = (out.sort_values(["dataset", "backbone", "task", "protocol", "_kind", "_size"])
               .drop(columns=["_kind", "_size"]).reset_index(drop=True))
        for col in ("n", "n_failed", "n_unconverged"):
            out[col] = out[col].fillna(0).astype(int)
        out["pretrain_seconds"] = [pre.get((d, b, t)) for d, b, t in
                                   zip(out["dataset"], out["backbone"], out["task"])]
        extra = {c: [] for c in ("gain", "gain_ci_low", "gain_ci_high", "p_t", "p_t_holm",
                                 "p_boot", "p_boot_holm", "tested", "significant", "winner")}
        for _, row in out.iterrows():
            comp = self.comparisons(row["dataset"], row["backbone"])
            vs = comp["vs_scratch"].get((row["task"], row["protocol"], row["budget"]))
            for col, attr in (("gain", "mean"), ("gain_ci_low", "ci_low"),
                              ("gain_ci_high", "ci_high"), ("p_t", "p_t"),
                              ("p_t_holm", "p_t_holm"), ("p_boot", "p_boot"),
                              ("p_boot_holm", "p_boot_holm")):
                extra[col].append(getattr(vs, attr) if vs else math.nan)
            extra["tested"].append(bool(vs.tested) if vs else False)
            extra["significant"].append(bool(vs.significant) if vs else False)
            win = comp["winners"].get((row["protocol"], row["budget"]))
            extra["winner"].append(bool(win and win["task"] == row["task"]
                                        and win["result"] is not None
                                        and win["result"].significant))
        for col, values in extra.items():
            out[col] = values
        # a statistic that does not exist (one seed: no interval, no test) is missing, <NA>,
        # never an infinite interval or a NaN that reads as a number
        for col in ("std", "gain", "gain_ci_low", "gain_ci_high", "p_t", "p_t_holm", "p_boot",
                    "p_boot_holm"):
            out[col] = pd.array([v if isinstance(v, (int, float)) and math.isfinite(v)
                                 else None for v in out[col]], dtype="Float64")
        self._summary = out
        return out.copy()

    def detectable(self, dataset: str, backbone: str) -> dict[tuple[str, str], float]:
        """Per column (protocol, budget): the smallest gain over scratch its tests would
        find with 80% power at the table's Holm level (:func:`detectable_gain`), from the
        seeds' spread and the test set's size; nan where no comparison has two seeds."""
        family = sum(1 for r in self.comparisons(dataset, backbone)["vs_scratch"].values()
                     if r.tested)
        cells: dict[tuple, list] = {}
        for r in self._ok(dataset, backbone):
            cells.setdefault((r["task"], r["protocol"], Budget.of_record(r).label),
                             []).append(r)
        columns: dict[tuple[str, str], list] = {}
        for (task, proto, budget), recs in cells.items():
            base = cells.get((SCRATCH, proto, budget))
            if task != SCRATCH and base:
                columns.setdefault((proto, budget), []).append(pairs_of(recs, base))
        return {key: detectable_gain(pairs, family) for key, pairs in columns.items()}

    def tested(self, dataset: str, backbone: str) -> bool:
        """Whether a table has any comparison with seeds enough to test (two or more)."""
        return any(r.tested for r in self.comparisons(dataset, backbone)["vs_scratch"].values())

    def _ok(self, dataset: str, backbone: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == "ok" and r["dataset"] == dataset
                and r["backbone"] == backbone]

    def comparisons(self, dataset: str, backbone: str) -> dict[str, dict]:
        """``vs_scratch``: {(task, protocol, budget): PairedResult of task - scratch}, one
        Holm family; ``winners``: {(protocol, budget): {"task", "runner_up", "result"}} with
        the best mean against the second best, Holm-corrected over the columns."""
        key = (dataset, backbone)
        if key in self._comparisons:
            return self._comparisons[key]
        records = self._ok(dataset, backbone)
        cells: dict[tuple, list] = {}
        for r in records:
            cells.setdefault((r["task"], r["protocol"], Budget.of_record(r).label),
                             []).append(r)
        vs_scratch: dict[tuple, PairedResult] = {}
        for (task, proto, frac), recs in cells.items():
            base = cells.get((SCRATCH, proto, frac))
            if task != SCRATCH and base:
                result = compare(recs, base)
                if result is not None:
                    vs_scratch[(task, proto, frac)] = result
        correct_family(list(vs_scratch.values()))
        winners: dict[tuple, dict] = {}
        for proto in {k[1] for k in cells}:
            for frac in {k[2] for k in cells if k[1] == proto}:
                column = {t: recs for (t, p, f), recs in cells.items()
                          if p == proto and f == frac}
                if len(column) < 2:
                    continue
                means = sorted(((sum(100 * r["metrics"]["test_accuracy"] for r in recs)
                                 / len(recs), t) for t, recs in column.items()), reverse=True)
                best, second = means[0][1], means[1][1]
                winners[(proto, frac)] = {"task": best, "runner_up": second,
                                          "result": compare(column[best], column[second])}
        correct_family([w["result"] for w in winners.values()])
        self._comparisons[key] = {"vs_scratch": vs_scratch, "winners": winners}
        return self._comparisons[key]

    def display(self, mark_best: Callable[[str], str] = lambda s: s,
                dataset: str | None = None, backbone: str | None = None) -> pd.DataFrame:
        """The leaderboard as strings: index = task, columns = "protocol BUDGET (n=N)", then the
        pretext columns. Cells read "mean ± std", then ▲/▼ where the task is significantly
        better/worse than scratch, † with a count where seeds did not converge, [n=k] where a
        cell has fewer seeds than its column; "n/a" where a protocol does not apply, "—" where
        a cell of the grid has no record yet, "failed"
        where every seed failed. The column's winner goes through ``mark_best`` only when it is
        significantly better than the runner-up. ``dataset``/``backbone`` pick one group
        (default: the first)."""
        summary = self.summary()
        if dataset is None:
            dataset, backbone = self.groups[0]
        summary = summary[(summary["dataset"] == dataset) & (summary["backbone"] == backbone)]
        columns = {}
        budget_row, detectable_row = {}, {}
        detectable = self.detectable(dataset, backbone)
        for proto in self.protocols:
            for budget in self.budgets:
                col = summary[(summary["protocol"] == proto) & (summary["budget"] == budget)]
                if col.empty:
                    continue
                top_n = int(col["n"].max())
                cells = {}
                for task in self.tasks:
                    row = col[col["task"] == task]
                    if row.empty:
                        # not run at this budget: "—" where the task has this protocol at
                        # another budget (a cell still missing), "n/a" where it has none
                        ran = ((summary["task"] == task) & (summary["protocol"] == proto)).any()
                        cells[task] = "—" if ran else "n/a"
                        continue
                    row = row.iloc[0]
                    if row["n"] == 0:
                        cells[task] = "failed"
                        continue
                    text = f"{row['mean']:.1f}"
                    if row["n"] > 1:
                        text += f" ± {row['std']:.1f}"
                    if row["significant"]:
                        text += f" {UP if row['gain'] > 0 else DOWN}"
                    if row["n_unconverged"]:
                        text += f" {UNCONVERGED}{row['n_unconverged']}"
                    if row["n"] < top_n:
                        text += f" [n={row['n']}]"
                    if row["n_failed"]:
                        text += f" ({row['n_failed']} failed)"
                    cells[task] = mark_best(text) if row["winner"] else text
                name = f"{proto} {budget} (n={top_n})"
                columns[name] = cells
                budget_row[name] = _budget(col)
                gain = detectable.get((proto, budget), math.nan)
                detectable_row[name] = f"±{gain:.1f}" if math.isfinite(gain) else "—"
        index = [t for t in self.tasks if t in set(summary["task"])]
        table = pd.DataFrame(columns, index=index)
        pretext = self.pretext(dataset, backbone)
        table["pretext (held-out)"] = [pretext.get(t, {}).get("text", "—") for t in index]
        table["control"] = [pretext.get(t, {}).get("control", "—") for t in index]
        pre = summary.drop_duplicates("task").set_index("task")["pretrain_seconds"]
        table["pretraining"] = [format_seconds(pre.get(t)) if t != SCRATCH else "—"
                                for t in index]
        blank = {"pretext (held-out)": "", "control": "", "pretraining": ""}
        # a table that tests nothing (one seed) has nothing to detect: no such row
        tested = self.tested(dataset, backbone)
        budget = pd.DataFrame([{**budget_row, **blank}] + ([{**detectable_row, **blank}]
                                                           if tested else []),
                              index=["labels (train+val)"] + ([DETECTABLE] if tested else []))
        table = pd.concat([budget, table])
        table.index.name = "task"
        return table

    def pretext(self, dataset: str, backbone: str) -> dict[str, dict[str, str]]:
        """Per task: the held-out pretext accuracy of its checkpoints (mean over seeds, with
        chance) and its shortcut control, as text."""
        f = self.frame[(self.frame["dataset"] == dataset) & (self.frame["backbone"] == backbone)]
        f = f.dropna(subset=["pretext_accuracy"]).drop_duplicates(
            ["task", "seed", "split_seed"])
        out = {}
        for task, g in f.groupby("task"):
            near = int(g["pretext_near_chance"].fillna(0).sum())
            text = (f"{g['pretext_accuracy'].mean():.1f}% (chance "
                    f"{g['pretext_chance'].mean():.1f}%)")
            if near:
                text += f" ≈chance {near}/{len(g)}"
            entry = {"text": text}
            c = g.dropna(subset=["control_accuracy"])
            if len(c):
                entry["control"] = (f"{c['control_name'].iloc[0]}: "
                                    f"{c['control_accuracy'].mean():.1f}% (chance "
                                    f"{c['control_chance'].mean():.1f}%)")
            out[task] = entry
        return out

    def title(self, dataset: str) -> str:
        """A data set as a report shows it: without its maker's folders
        (``imagefolder:flowers``)."""
        return public_name(dataset)

    def caption(self, dataset: str | None = None, backbone: str | None = None) -> str:
        """What the numbers are, how they were chosen and compared, and where they come from."""
        if dataset is None:
            dataset, backbone = self.groups[0]
        sel = self.frame[(self.frame["dataset"] == dataset) & (self.frame["backbone"] == backbone)]
        ok = sel[sel["status"] == "ok"]
        seeds = sorted(ok["seed"].unique())
        splits = sorted(ok["split_seed"].unique())
        presets = sorted(p for p in sel["preset"].dropna().unique())
        rec = next(r for r in self.records
                   if r["dataset"] == dataset and r["backbone"] == backbone)
        s = rec.get("settings", {})
        n_test = sorted({int(x) for x in ok["n_test"].dropna().unique()})
        if s.get("validation", "fixed") == "labeled":
            validation = (f"every choice (checkpoint, probe layer and regularisation) made on "
                          f"the cell's own validation images, {s.get('val_share', 0.2):.0%} "
                          "of its labels (counted in the budget)")
        else:
            validation = (f"every choice made on a fixed validation split of "
                          f"{s.get('val_fraction', 0.1):.0%} of the training data, outside "
                          "the label budget")
        fixed = sum(1 for r in self.records if r["dataset"] == dataset
                    and r["backbone"] == backbone and r["status"] == "ok"
                    and str(r.get("chosen_on", "validation")).startswith("fixed"))
        if fixed:
            validation += (f" ({fixed} cells had no validation image, a budget of one label "
                           "per class: their choices were fixed in advance, the last stage "
                           "and the middle of the grid, or the budget's last step)")
        protocols = "; ".join(f"{p}: {text}" for p, text in self._protocol_summaries(
            dataset, backbone).items())
        return (f"Test accuracy (%) on {public_name(dataset)} ({'/'.join(map(str, n_test)) or '?'} test "
                f"images), backbone {backbone}, preset {'/'.join(presets) or '?'} "
                f"({s.get('resolution')} px, {s.get('pretrain_epochs')} pretraining epochs); "
                f"{protocols}; mean ± std over {len(seeds)} seed(s) "
                f"({', '.join(map(str, seeds))})"
                + (f" and {len(splits)} train/test splits" if len(splits) > 1 else "")
                + f"; {validation}. " + self._statistics_note(dataset, backbone)
                + f"{UNCONVERGED}k: k seeds not converged. scratch: the same backbone from "
                "random initialisation on the same labels."
                + (f" {self.note}" if self.note else ""))

    def _statistics_note(self, dataset: str, backbone: str) -> str:
        """The caption's sentence on the tests, with their family; or, where no comparison
        has two seeds, that nothing was tested."""
        if not self.tested(dataset, backbone):
            return f"{SINGLE_SEED}. "
        family = sum(1 for r in self.comparisons(dataset, backbone)["vs_scratch"].values()
                     if r.tested)
        return (f"{UP}/{DOWN}: significantly better/worse than scratch (paired t-test over "
                f"seeds and paired bootstrap over seeds and test images, both p < {ALPHA} "
                f"after Holm's correction over the table's {family} task-vs-scratch "
                "comparisons; a row added to the table joins that family and can only raise "
                "the others' corrected p-values); bold/marked: the column's best, only where "
                "significantly better than the runner-up; "
                f"{DETECTABLE}: the smallest true gain over scratch that both tests would find "
                "in that column 80% of the time at the first step of Holm's correction, from "
                "the spread of the seeds' differences and the test set's size (a smaller "
                "difference may be real but this design cannot show it); ")

    def _protocol_summaries(self, dataset: str, backbone: str) -> dict[str, str]:
        """Per protocol, in the table's order, what its records say it did
        (``protocol_summary``). Records older than sslbench 0.5 have none: their settings
        are described instead."""
        out: dict[str, str] = {}
        for proto in self.protocols:
            rec = next((r for r in self.records if r["dataset"] == dataset
                        and r["backbone"] == backbone and r["protocol"] == proto), None)
            if rec is None:
                continue
            text = rec.get("protocol_summary") or \
                "as its records' settings say (written by sslbench < 0.5, which kept no summary)"
            out[proto] = text
        return out

    def gains(self, dataset: str, backbone: str) -> pd.DataFrame:
        """Every task-vs-scratch comparison of a table: gain with its 95% t interval, both
        p-values before and after Holm's correction, and the verdict."""
        rows = []
        comp = self.comparisons(dataset, backbone)["vs_scratch"]
        for (task, proto, budget), r in sorted(
                comp.items(), key=lambda kv: (kv[0][0], kv[0][1], self._budgets[kv[0][2]].order)):
            rows.append({"task": task, "protocol": proto, "labels": budget,
                         "n": r.n, "gain": f"{r.mean:+.1f}",
                         "95% CI (t)": (f"[{r.ci_low:+.1f}, {r.ci_high:+.1f}]"
                                        if math.isfinite(r.ci_low) else "—"),
                         "p (t)": format_p(r.p_t), "p (t, Holm)": format_p(r.p_t_holm),
                         "95% CI (bootstrap)": (f"[{r.boot_low:+.1f}, {r.boot_high:+.1f}]"
                                                if math.isfinite(r.boot_low) else "—"),
                         "p (bootstrap, Holm)": format_p(r.p_boot_holm),
                         "verdict": ("not tested (1 seed)" if not r.tested else
                                     ("better" if r.mean > 0 else "worse") if r.significant
                                     else "n.s.")})
        return pd.DataFrame(rows)


def _budget(col: pd.DataFrame) -> str:
    """"276+69" (median training + validation images of a column's cells)."""
    train, val = col["n_train"].median(), col["n_val"].median()
    if pd.isna(train):
        return ""
    return f"{int(train)}+{int(val)}" if not pd.isna(val) else f"{int(train)}"


# --------------------------------------------------------------------------- publishing
def run_command(records: list[dict[str, Any]]) -> str:
    """The ``sslbench run`` command that produced these records (from their sweep config)."""
    sweep = records[0].get("sweep", {})
    tasks = sorted({r["task"] for r in records if r["task"] != SCRATCH})
    splits = sorted({r.get("split_seed", 0) for r in records})
    # data sets by their public names: a report shows no folder of its maker's
    datasets = sorted({public_name(r["dataset"]) for r in records})
    parts = ["sslbench run", f"--dataset {','.join(datasets)}",
             f"--backbone {','.join(sorted({r['backbone'] for r in records}))}",
             f"--tasks {','.join(tasks)}" if tasks else "",
             *_budget_flags(records),
             f"--protocols {','.join(sorted({r['protocol'] for r in records}))}",
             f"--seeds {','.join(str(s) for s in sorted({r['seed'] for r in records}))}",
             f"--split-seeds {','.join(map(str, splits))}" if splits != [0] else "",
             "--dedup" if sweep.get("dedup") else "",
             f"--preset {sweep.get('preset')}" if sweep.get("preset") else ""]
    parts += _overrides(sweep)
    return " ".join(p for p in parts if p)


def _budget_flags(records: list[dict[str, Any]]) -> list[str]:
    """``--fractions 0.1,1``, ``--labels-per-class 20,100``, ``--labels 250``: the records'
    budgets by kind."""
    by_kind: dict[str, set] = {}
    for r in records:
        budget = Budget.of_record(r)
        by_kind.setdefault(budget.kind, set()).add(budget.value)
    return [f"{FLAGS[kind]} "
            + ",".join(fraction_key(v) if kind == "fraction" else str(int(v))
                       for v in sorted(by_kind[kind]))
            for kind in FLAGS if kind in by_kind]


def _overrides(sweep: dict[str, Any]) -> list[str]:
    """The flags that changed what ran beyond the grid's axes: every setting that differs
    from the preset (``--set``), every task option (``--task-opt``), every ``--plugin``."""
    from ._core.config import format_value
    preset = sweep.get("preset_settings") or _installed_preset_settings(sweep.get("preset"))
    settings = sweep.get("settings") or {}
    out = [f"--set {k}={format_value(v)}" for k, v in sorted(settings.items())
           if k != "backbone" and k in preset and preset[k] != v]
    given = {**(sweep.get("task_options") or {}), **(sweep.get("options") or {})}
    out += [f"--opt {name}.{k}={format_value(v)}"
            for name, opts in sorted(given.items()) for k, v in sorted(opts.items())]
    out += [f"--plugin {p}" for p in sweep.get("plugins") or []]
    return [_quoted(flag) for flag in out]


def _installed_preset_settings(name: str | None) -> dict[str, Any]:
    """The settings of an installed preset, for records written before they carried their
    preset's (sslbench 0.5.0.dev0 before presets became plugins); {} if it is not installed."""
    from ._core.plugins import PluginHost
    preset = PluginHost.from_environment().find("preset", name or "")
    return preset.resolved_settings() if preset is not None else {}


def _quoted(flag: str) -> str:
    """``--set probe_l2=[0.1, 1]`` -> ``--set 'probe_l2=[0.1, 1]'``: a shell reads it back."""
    import shlex
    option, _, value = flag.partition(" ")
    return f"{option} {shlex.quote(value)}"


class Publication:
    """What a published report adds to the leaderboard: the statistics behind it, label
    efficiency, provenance and plots. Built from a :class:`Leaderboard`; used by the HTML and
    markdown formats."""

    def __init__(self, board: Leaderboard) -> None:
        self.board = board

    def label_efficiency(self) -> pd.DataFrame:
        """Per task and protocol: the gain over scratch (points) at each budget, "n.s."
        where the paired tests do not support it, and the smallest budget whose mean reaches
        scratch fine-tuned on the largest budget (100% of the labels where the grid has it).
        That reference is used only when every seed of it converged; otherwise the column
        says why it is missing."""
        s = self.board.summary()
        rows = []
        top = self.reference_budget()
        reaches = f"reaches scratch@{top} at"
        for (ds, bb), group in s.groupby(["dataset", "backbone"]):
            ref = group[(group["task"] == SCRATCH)
                        & (group["protocol"].isin(self.board.trained_protocols()))
                        & (group["budget"] == top)].head(1)
            reference = float(ref["mean"].iloc[0]) if len(ref) else float("nan")
            unconverged = bool(len(ref)) and int(ref["n_unconverged"].iloc[0]) > 0
            for (task, proto), g in group[group["task"] != SCRATCH].groupby(["task", "protocol"]):
                row = {"dataset": public_name(ds), "backbone": bb, "task": task, "protocol": proto}
                for budget in self.board.budgets:   # every column, "—" where not run
                    at = g[g["budget"] == budget]
                    gain = at["gain"].iloc[0] if len(at) else float("nan")
                    label = f"gain {budget}"
                    if pd.isna(gain):
                        row[label] = "—"
                    else:
                        row[label] = (f"{gain:+.1f}"
                                      + ("" if at["significant"].iloc[0] else
                                         " n.s." if at["tested"].iloc[0] else " (1 seed)"))
                if not len(ref):
                    row[reaches] = "—"
                elif unconverged:
                    row[reaches] = f"— (scratch@{top} not converged)"
                else:
                    reached = [b for b in self.board.budgets
                               if (g[g["budget"] == b]["mean"] >= reference).any()]
                    row[reaches] = reached[0] if reached else "not reached"
                rows.append(row)
        return pd.DataFrame(rows).fillna("—")     # a budget a task has not run at

    def reference_budget(self) -> str:
        """The budget of the label-efficiency reference: 100% where the grid has it, else
        its largest (by the median number of labeled images)."""
        if "100%" in self.board.budgets:
            return "100%"
        frame = self.board.frame
        sizes = (frame["n_train"].fillna(0) + frame["n_val"].fillna(0)).groupby(
            frame["budget"]).median()
        return max(self.board.budgets, key=lambda b: (sizes.get(b, 0), self.board.budget(b).order))

    def provenance(self) -> pd.DataFrame:
        """Per leaderboard cell: the records behind it, what each seed's protocol chose on
        validation (layer, step, k), and the label-split files."""
        rows = {}
        for r in self.board.records:
            key = (r["task"], r["protocol"], Budget.of_record(r).label)
            row = rows.setdefault(key, {"task": key[0], "protocol": key[1],
                                        "budget": key[2], "seeds": [],
                                        "chosen": [], "split files": set(), "failed": 0})
            row["seeds"].append(r["seed"])
            if r["status"] != "ok":
                row["failed"] += 1
                continue
            d = r.get("details") or {}
            chosen = d.get("chosen") or (f"stage {d['chosen_stage']}" if "chosen_stage" in d
                                         else f"step {d['chosen_step']}" if "chosen_step" in d
                                         else None)
            if chosen:
                row["chosen"].append(chosen + ("" if d.get("converged", True) else f" {UNCONVERGED}"))
            data = r.get("data") or {}
            row["split files"].update(x for x in (data.get("split_file"), data.get("labeled_file")) if x)
        out = []
        for row in rows.values():
            row["seeds"] = ",".join(map(str, sorted(row["seeds"])))
            row["chosen"] = ", ".join(row["chosen"]) or "—"
            row["split files"] = ", ".join(sorted(row["split files"]))
            out.append(row)
        out.sort(key=lambda row: (row["task"], row["protocol"],
                                  self.board.budget(row["budget"]).order))
        return pd.DataFrame(out)

    def hygiene(self) -> pd.DataFrame:
        """Per data set: the duplicate groups found when it was loaded."""
        seen = {}
        for r in self.board.records:
            h = (r.get("data") or {}).get("hygiene")
            if h and r["dataset"] not in seen:
                seen[r["dataset"]] = {
                    "dataset": public_name(r["dataset"]), "duplicate groups": h["duplicate_groups"],
                    "exact": h["exact_groups"], "near": h["near_groups"],
                    "across train/test": h["cross_split_groups"],
                    "conflicting labels": h["label_conflict_groups"],
                    "removed (--dedup)": (f"{h['deduplicated']['train']} train, "
                                          f"{h['deduplicated']['test']} test"
                                          if h.get("deduplicated") else "no")}
        return pd.DataFrame(list(seen.values()))

    def confusion(self) -> list[dict[str, Any]]:
        """Per (data set, backbone, task, protocol, budget): the confusion matrix summed over
        its seeds (rows: true class, columns: predicted), the class names and the per-class
        accuracy (%), from the records' ``metrics.confusion_matrix``."""
        cells: dict[tuple, list[dict[str, Any]]] = {}
        for r in self.board.records:
            if r["status"] == "ok" and (r.get("metrics") or {}).get("confusion_matrix"):
                key = (r["dataset"], r["backbone"], r["task"], r["protocol"],
                       Budget.of_record(r).label)
                cells.setdefault(key, []).append(r)
        out = []
        for (dataset, backbone, task, protocol, budget), rs in sorted(
                cells.items(), key=lambda kv: (kv[0][:4], self.board.budget(kv[0][4]).order)):
            matrices = [r["metrics"]["confusion_matrix"] for r in rs]
            n = len(matrices[0])
            if any(len(m) != n for m in matrices):
                continue
            total = [[sum(m[i][j] for m in matrices) for j in range(n)] for i in range(n)]
            classes = (rs[0].get("data") or {}).get("classes") or []
            names = classes if len(classes) == n else [str(i) for i in range(n)]
            out.append({"dataset": public_name(dataset), "backbone": backbone, "task": task,
                        "protocol": protocol, "budget": budget, "seeds": len(rs),
                        "classes": names, "matrix": total,
                        "per_class_accuracy": [100 * row[i] / max(1, sum(row))
                                               for i, row in enumerate(total)]})
        return out

    def references(self) -> pd.DataFrame:
        """Published numbers of the tasks in this leaderboard (their ``references``), with
        sslbench's own mean where the setting matches: same data set, backbone, protocol and
        number of labeled images."""
        rows = []
        s = self.board.summary()
        labeled = {}
        for r in self.board.records:
            if r["status"] == "ok":
                labeled[(r["dataset"], r["backbone"], r["task"], r["protocol"],
                         r.get("n_labeled"))] = Budget.of_record(r).label
        for task in self.board.tasks:
            for ref in self._references_of(task):
                    budget = labeled.get((ref["dataset"], ref["backbone"], task,
                                          ref["protocol"], ref["labels"]))
                    ours = s[(s["task"] == task) & (s["dataset"] == ref["dataset"])
                             & (s["protocol"] == ref["protocol"]) & (s["budget"] == budget)]
                    rows.append({"task": task, **{k: ref[k] for k in (
                        "paper", "dataset", "backbone", "protocol", "labels")},
                        "published %": f"{ref['accuracy']:.2f}",
                        "sslbench %": f"{ours['mean'].iloc[0]:.1f}" if len(ours) else "— (setting differs)",
                        "source": ref["source"]})
        return pd.DataFrame(rows)

    def _references_of(self, task: str) -> list[dict[str, Any]]:
        """The published numbers a task's records carry (written at run time, so a report
        needs the records alone). Records older than sslbench 0.5 carry none: their task's
        installed plugin is asked instead, if it is still installed."""
        if task == SCRATCH:
            return []
        for r in self.board.records:
            if r["task"] == task and "references" in r:
                return list(r["references"] or [])
        return list(getattr(self.board.installed("task", task), "references", None) or [])

    def figures(self) -> dict[str, Any]:
        """matplotlib figures: ``accuracy`` (test accuracy against the label budget, one panel
        per protocol, error bars over seeds, scratch dashed) and ``gain`` (points over
        scratch per task and budget with 95% t intervals; hatched bars are not significant).
        Budgets are evenly spaced in table order."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        s = self.board.summary()
        s = s[s["n"] > 0]
        protocols = self.board.protocols
        figs = {}
        budgets = self.board.budgets
        position = {b: j for j, b in enumerate(budgets)}
        fig, axes = plt.subplots(1, len(protocols), figsize=(4.5 * len(protocols), 3.6),
                                 squeeze=False, sharey=True)
        for ax, proto in zip(axes[0], protocols):
            for task in self.board.tasks:
                g = s[(s["protocol"] == proto) & (s["task"] == task)]
                if g.empty:
                    continue
                style = dict(color="black", linestyle="--") if task == SCRATCH else {}
                ax.errorbar([position[b] for b in g["budget"]], g["mean"],
                            yerr=g["std"].fillna(0), marker="o", capsize=3, label=task, **style)
            ax.set_xticks(range(len(budgets)), budgets)
            ax.set_title(proto)
            ax.set_xlabel("label budget")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("test accuracy (%)")
        axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
        figs["accuracy"] = fig

        gains = s[s["task"] != SCRATCH].dropna(subset=["gain"])
        tested = bool(gains["tested"].any()) if len(gains) else False
        fig, axes = plt.subplots(1, len(protocols), figsize=(4.5 * len(protocols), 3.6),
                                 squeeze=False, sharey=True)
        for ax, proto in zip(axes[0], protocols):
            g = gains[gains["protocol"] == proto]
            tasks = sorted(g["task"].unique())
            width = 0.8 / max(1, len(tasks))
            for i, task in enumerate(tasks):
                t = g[g["task"] == task].set_index("budget")
                xs, ys, lo, hi, sig = [], [], [], [], []
                for j, f in enumerate(budgets):
                    if f in t.index:
                        r = t.loc[f]
                        xs.append(j + i * width)
                        ys.append(r["gain"])
                        lo.append(0 if pd.isna(r["gain_ci_low"]) else r["gain"] - r["gain_ci_low"])
                        hi.append(0 if pd.isna(r["gain_ci_high"]) else r["gain_ci_high"] - r["gain"])
                        sig.append(bool(r["significant"]))
                bars = ax.bar(xs, ys, width=width, label=task,
                              yerr=[lo, hi] if tested else None, capsize=2)
                for bar, significant in zip(bars, sig):
                    if tested and not significant:
                        bar.set_hatch("///")
                        bar.set_alpha(0.5)
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(budgets))])
            ax.set_xticklabels(budgets)
            ax.set_title(proto)
            ax.set_xlabel("labels used (hatched: not significant)" if tested else
                          "labels used")
            ax.grid(alpha=0.3, axis="y")
        axes[0][0].set_ylabel("gain over scratch (points, 95% CI)" if tested else
                              f"gain over scratch (points; {SINGLE_SEED.split(';')[0]}, "
                              "no interval)")
        if len(gains):
            axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
        figs["gain"] = fig
        pretraining = self.pretraining_curves()
        if pretraining:
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), squeeze=False)
            for task, curves in sorted(pretraining.items()):
                for ax, key in zip(axes[0], ("loss", "pretext_accuracy")):
                    points = curves.get(key)
                    if points:
                        epochs = sorted(points)
                        ax.plot(epochs, [sum(points[e]) / len(points[e]) for e in epochs], marker=".",
                                label=task)
            for ax, title in zip(axes[0], ("pretraining loss", "pretext accuracy, training batches (%)")):
                ax.set_title(title)
                ax.set_xlabel("epoch (mean over seeds)")
                ax.grid(alpha=0.3)
            axes[0][-1].legend(fontsize=8)
            fig.tight_layout()
            figs["pretraining"] = fig
        return figs

    def pretraining_curves(self) -> dict[str, dict[str, dict[int, list[float]]]]:
        """{task: {"loss" | "pretext_accuracy": {epoch: [value per checkpoint]}}}, from the
        records' pretraining histories, each checkpoint counted once."""
        seen: set[str] = set()
        out: dict[str, dict[str, dict[int, list[float]]]] = {}
        for r in self.board.records:
            p = r.get("pretraining") or {}
            ckpt = p.get("checkpoint")
            if not ckpt or ckpt in seen or not p.get("history"):
                continue
            seen.add(ckpt)
            for h in p["history"]:
                for key in ("loss", "pretext_accuracy"):
                    value = h.get(key)
                    if isinstance(value, (int, float)) and math.isfinite(value):
                        out.setdefault(r["task"], {}).setdefault(key, {}).setdefault(
                            int(h["epoch"]), []).append(100 * value if key != "loss" else value)
        return out

    def render_figures(self) -> dict[str, dict[str, bytes]]:
        """{figure name: {"png": bytes, "svg": bytes}}."""
        import io

        import matplotlib.pyplot as plt
        out = {}
        for name, fig in self.figures().items():
            out[name] = {}
            for fmt in ("png", "svg"):
                buffer = io.BytesIO()
                fig.savefig(buffer, format=fmt, dpi=120)
                out[name][fmt] = buffer.getvalue()
            plt.close(fig)
        return out


def __getattr__(name: str) -> Any:
    """``sslbench.leaderboard.ReportFormat``, its home before sslbench 0.5: still found, with
    a DeprecationWarning, until 0.6 (``sslbench.formats.ReportFormat`` is the public name)."""
    if name == "ReportFormat":
        import warnings
        warnings.warn("sslbench.leaderboard.ReportFormat is sslbench.formats.ReportFormat; the "
                      "old name goes in sslbench 0.6", DeprecationWarning, stacklevel=2)
        from .formats import ReportFormat
        return ReportFormat
    raise AttributeError(f"module 'sslbench.leaderboard' has no attribute {name!r}")
