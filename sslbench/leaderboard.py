"""From records to a leaderboard: one row per task plus the scratch baseline, one column per
protocol x label fraction, mean ± std of test accuracy over seeds.

The numbers live in a long pandas DataFrame (one row per finished cell); :class:`Leaderboard`
aggregates it, and report formats (plugins: markdown, HTML, LaTeX, CSV, a terminal table)
render the aggregate through :meth:`Leaderboard.display`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

SCRATCH = "scratch"


@dataclass
class ReportFormat:
    """A way to render a leaderboard, offered by a plugin through
    :func:`~sslbench.hookspecs.sslbench_report_formats`."""

    name: str
    render: Callable[["Leaderboard"], str]
    description: str = ""
    suffix: str = ".txt"


def format_seconds(seconds: float | None) -> str:
    if seconds is None or pd.isna(seconds):
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


class Leaderboard:
    """Aggregated results of one or more results directories."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        rows = []
        for r in records:
            pre = r.get("pretraining") or {}
            rows.append({
                "dataset": r["dataset"], "backbone": r["backbone"], "task": r["task"],
                "protocol": r["protocol"], "fraction": float(r["fraction"]), "seed": r["seed"],
                "status": r["status"], "preset": r.get("preset"),
                "test_accuracy": (100 * r["metrics"]["test_accuracy"]
                                  if r["status"] == "ok" else float("nan")),
                "pretrain_seconds": pre.get("seconds"),
                "error": r.get("error")})
        self.frame = pd.DataFrame(rows, columns=[
            "dataset", "backbone", "task", "protocol", "fraction", "seed", "status", "preset",
            "test_accuracy", "pretrain_seconds", "error"])

    # ------------------------------------------------------------------ aggregates
    @property
    def protocols(self) -> list[str]:
        order = {"linear": 0, "knn": 1, "finetune": 2}
        return sorted(self.frame["protocol"].unique(), key=lambda p: (order.get(p, 9), p))

    @property
    def fractions(self) -> list[float]:
        return sorted(self.frame["fraction"].unique())

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
        """Long form: one row per (dataset, backbone, task, protocol, fraction) with mean, std
        and n over seeds of test accuracy (%), the number of failed cells, and the mean
        pretraining time."""
        keys = ["dataset", "backbone", "task", "protocol", "fraction"]
        ok = self.frame[self.frame["status"] == "ok"]
        agg = ok.groupby(keys)["test_accuracy"].agg(mean="mean", std="std", n="count")
        failed = (self.frame[self.frame["status"] != "ok"].groupby(keys).size()
                  .rename("n_failed"))
        pre = (self.frame.dropna(subset=["pretrain_seconds"])
               .drop_duplicates(["dataset", "backbone", "task", "seed"])
               .groupby(["dataset", "backbone", "task"])["pretrain_seconds"].mean())
        out = agg.join(failed, how="outer").reset_index()
        out["n"] = out["n"].fillna(0).astype(int)
        out["n_failed"] = out["n_failed"].fillna(0).astype(int)
        out["pretrain_seconds"] = [pre.get((d, b, t)) for d, b, t in
                                   zip(out["dataset"], out["backbone"], out["task"])]
        return out

    def display(self, mark_best: Callable[[str], str] = lambda s: s,
                dataset: str | None = None, backbone: str | None = None) -> pd.DataFrame:
        """The leaderboard as strings: index = task, columns = "protocol f%" plus
        "pretraining". Cells read "mean ± std" ("n/a" where a protocol does not apply,
        "failed" where every seed failed); the best mean of each column goes through
        ``mark_best``. ``dataset``/``backbone`` pick one group (default: the first)."""
        summary = self.summary()
        if dataset is None:
            dataset, backbone = self.groups[0]
        summary = summary[(summary["dataset"] == dataset) & (summary["backbone"] == backbone)]
        columns = {}
        for proto in self.protocols:
            for frac in self.fractions:
                col = summary[(summary["protocol"] == proto) & (summary["fraction"] == frac)]
                if col.empty:
                    continue
                best = col["mean"].max()
                cells = {}
                for task in self.tasks:
                    row = col[col["task"] == task]
                    if row.empty:
                        cells[task] = "n/a"
                        continue
                    row = row.iloc[0]
                    if row["n"] == 0:
                        cells[task] = "failed"
                        continue
                    text = f"{row['mean']:.1f}"
                    if row["n"] > 1:
                        text += f" ± {row['std']:.1f}"
                    if row["n_failed"]:
                        text += f" ({row['n_failed']} failed)"
                    cells[task] = mark_best(text) if row["mean"] == best else text
                columns[f"{proto} {frac * 100:g}%"] = cells
        table = pd.DataFrame(columns, index=[t for t in self.tasks
                                             if t in set(summary["task"])])
        pre = summary.drop_duplicates("task").set_index("task")["pretrain_seconds"]
        table["pretraining"] = [format_seconds(pre.get(t)) if t != SCRATCH else "—"
                                for t in table.index]
        table.index.name = "task"
        return table

    def caption(self, dataset: str | None = None, backbone: str | None = None) -> str:
        """What the numbers are and where they come from."""
        if dataset is None:
            dataset, backbone = self.groups[0]
        sel = self.frame[(self.frame["dataset"] == dataset) & (self.frame["backbone"] == backbone)]
        seeds = sorted(sel["seed"].unique())
        presets = sorted(p for p in sel["preset"].dropna().unique())
        rec = next(r for r in self.records
                   if r["dataset"] == dataset and r["backbone"] == backbone)
        s = rec.get("settings", {})
        return (f"Test accuracy (%) on {dataset}, backbone {backbone}, preset "
                f"{'/'.join(presets) or '?'} ({s.get('resolution')} px, "
                f"{s.get('pretrain_epochs')} pretraining epochs, "
                f"{s.get('finetune_steps')} fine-tuning steps); mean ± std over "
                f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}); best of each column "
                "marked. linear: best stage chosen on validation; scratch: the same backbone "
                "from random initialisation on the same labels.")
