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
    plots: bool = False   # ``sslbench report -o`` writes the plots (PNG, SVG) beside the file


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

    def __init__(self, records: list[dict[str, Any]], host=None) -> None:
        self.records = records
        # the plugins that rendering may consult (reference numbers of the tasks shown);
        # None: the installed ones
        self.host = host
        # file-name stem of plot files written beside a report (``sslbench report -o``);
        # formats that link to plots (markdown) use it
        self.asset_stem: str | None = None
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


# --------------------------------------------------------------------------- publishing
def run_command(records: list[dict[str, Any]]) -> str:
    """The ``sslbench run`` command that produced these records (from their sweep config)."""
    sweep = records[0].get("sweep", {})
    tasks = sorted({r["task"] for r in records if r["task"] != SCRATCH})
    parts = ["sslbench run", f"--dataset {','.join(sorted({r['dataset'] for r in records}))}",
             f"--backbone {','.join(sorted({r['backbone'] for r in records}))}",
             f"--tasks {','.join(tasks)}" if tasks else "",
             f"--fractions {','.join(f'{f:g}' for f in sorted({float(r['fraction']) for r in records}))}",
             f"--protocols {','.join(sorted({r['protocol'] for r in records}))}",
             f"--seeds {','.join(str(s) for s in sorted({r['seed'] for r in records}))}",
             f"--preset {sweep.get('preset', 'quick')}"]
    return " ".join(p for p in parts if p)


class Publication:
    """What a published report adds to the leaderboard: label efficiency, provenance and
    plots. Built from a :class:`Leaderboard`; used by the HTML and markdown formats."""

    def __init__(self, board: Leaderboard) -> None:
        self.board = board

    def label_efficiency(self) -> pd.DataFrame:
        """Per task and protocol: the gain over scratch (points) at each fraction, and the
        smallest fraction at which the task reaches scratch's fine-tuned accuracy with 100%
        of the labels (the fully supervised reference), where it does."""
        s = self.board.summary()
        rows = []
        for (ds, bb), group in s.groupby(["dataset", "backbone"]):
            ref = group[(group["task"] == SCRATCH) & (group["protocol"] == "finetune")
                        & (group["fraction"] == 1.0)]["mean"]
            reference = float(ref.iloc[0]) if len(ref) else float("nan")
            for (task, proto), g in group[group["task"] != SCRATCH].groupby(["task", "protocol"]):
                row = {"dataset": ds, "backbone": bb, "task": task, "protocol": proto}
                base = group[(group["task"] == SCRATCH) & (group["protocol"] == proto)]
                for _, r in g.sort_values("fraction").iterrows():
                    b = base[base["fraction"] == r["fraction"]]["mean"]
                    row[f"gain {r['fraction'] * 100:g}%"] = (r["mean"] - float(b.iloc[0])
                                                             if len(b) else float("nan"))
                reached = g[g["mean"] >= reference].sort_values("fraction")
                row["reaches supervised@100% at"] = (f"{reached['fraction'].iloc[0] * 100:g}%"
                                                     if len(reached) else "not reached")
                rows.append(row)
        return pd.DataFrame(rows)

    def provenance(self) -> pd.DataFrame:
        """Per leaderboard cell: the records behind it, the probed layer or fine-tuning step
        chosen on validation for each seed, and the label-split files."""
        rows = {}
        for r in self.board.records:
            key = (r["task"], r["protocol"], float(r["fraction"]))
            row = rows.setdefault(key, {"task": key[0], "protocol": key[1],
                                        "fraction": key[2], "seeds": [],
                                        "chosen": [], "split files": set(), "failed": 0})
            row["seeds"].append(r["seed"])
            if r["status"] != "ok":
                row["failed"] += 1
                continue
            d = r.get("details") or {}
            if "chosen_stage" in d:
                row["chosen"].append(f"stage {d['chosen_stage']}")
            elif "chosen_step" in d:
                row["chosen"].append(f"step {d['chosen_step']}")
            data = r.get("data") or {}
            row["split files"].update(x for x in (data.get("split_file"), data.get("labeled_file")) if x)
        out = []
        for row in rows.values():
            row["seeds"] = ",".join(map(str, sorted(row["seeds"])))
            row["chosen"] = ", ".join(row["chosen"]) or "—"
            row["split files"] = ", ".join(sorted(row["split files"]))
            out.append(row)
        frame = pd.DataFrame(out).sort_values(["task", "protocol", "fraction"])
        frame["fraction"] = [f"{f * 100:g}%" for f in frame["fraction"]]
        return frame.reset_index(drop=True)

    def references(self) -> pd.DataFrame:
        """Published numbers of the tasks in this leaderboard (their ``references``), with
        sslbench's own mean where the setting matches: same data set, backbone, protocol and
        number of labeled images."""
        if self.board.host is None:
            from .plugins import PluginHost
            self.board.host = PluginHost.from_environment()
        host = self.board.host
        rows = []
        s = self.board.summary()
        labeled = {}
        for r in self.board.records:
            if r["status"] == "ok":
                labeled[(r["dataset"], r["backbone"], r["task"], r["protocol"],
                         r.get("n_labeled"))] = float(r["fraction"])
        for task in self.board.tasks:
            try:
                classes = [] if task == SCRATCH else [host.task(task)]  # "a+b": no reference
            except Exception:  # noqa: BLE001 - a combined row, or a plugin no longer installed
                classes = []
            for cls in classes:
                for ref in getattr(cls, "references", []):
                    frac = labeled.get((ref["dataset"], ref["backbone"], task, ref["protocol"],
                                        ref["labels"]))
                    ours = s[(s["task"] == task) & (s["dataset"] == ref["dataset"])
                             & (s["protocol"] == ref["protocol"]) & (s["fraction"] == frac)]
                    rows.append({"task": task, **{k: ref[k] for k in (
                        "paper", "dataset", "backbone", "protocol", "labels")},
                        "published %": f"{ref['accuracy']:.2f}",
                        "sslbench %": f"{ours['mean'].iloc[0]:.1f}" if len(ours) else "— (setting differs)",
                        "source": ref["source"]})
        return pd.DataFrame(rows)

    def figures(self) -> dict[str, Any]:
        """matplotlib figures: ``accuracy`` (test accuracy against label fraction, one panel
        per protocol, error bars over seeds, scratch dashed) and ``gain`` (points over
        scratch per task and fraction)."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        s = self.board.summary()
        s = s[s["n"] > 0]
        protocols = self.board.protocols
        figs = {}
        fig, axes = plt.subplots(1, len(protocols), figsize=(4.5 * len(protocols), 3.6),
                                 squeeze=False, sharey=True)
        for ax, proto in zip(axes[0], protocols):
            for task in self.board.tasks:
                g = s[(s["protocol"] == proto) & (s["task"] == task)].sort_values("fraction")
                if g.empty:
                    continue
                style = dict(color="black", linestyle="--") if task == SCRATCH else {}
                ax.errorbar(g["fraction"] * 100, g["mean"], yerr=g["std"].fillna(0), marker="o",
                            capsize=3, label=task, **style)
            ax.set_xscale("log")
            ticks = [f * 100 for f in self.board.fractions]
            ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
            ax.minorticks_off()
            ax.set_title(proto)
            ax.set_xlabel("labels used (%)")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("test accuracy (%)")
        axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
        figs["accuracy"] = fig

        eff = self.label_efficiency()
        gain_cols = [c for c in eff.columns if c.startswith("gain ")]
        fig, axes = plt.subplots(1, len(protocols), figsize=(4.5 * len(protocols), 3.6),
                                 squeeze=False, sharey=True)
        for ax, proto in zip(axes[0], protocols):
            g = eff[eff["protocol"] == proto] if len(eff) else eff
            width = 0.8 / max(1, len(g))
            for i, (_, row) in enumerate(g.iterrows()):
                xs = [j + i * width for j in range(len(gain_cols))]
                ax.bar(xs, [row[c] for c in gain_cols], width=width, label=row["task"])
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(gain_cols))])
            ax.set_xticklabels([c.replace("gain ", "") for c in gain_cols])
            ax.set_title(proto)
            ax.set_xlabel("labels used")
            ax.grid(alpha=0.3, axis="y")
        axes[0][0].set_ylabel("gain over scratch (points)")
        if len(eff):
            axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
        figs["gain"] = fig
        return figs

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
