"""The ``sslbench`` command line: ``run``, ``list`` and ``report``.

Bad input (an unknown name, a missing folder, an out-of-range fraction) is one line on stderr
and exit status 2. ``run`` exits 1 when the sweep finished but some cell failed (each failure
is in its record), 0 when every cell succeeded.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .atomic import atomic_write_bytes, atomic_write_text
from .config import (_deep_merge, build_config, load_toml, parse_assignments, parse_list,
                     parse_options,
                     parse_task_options)
from ..errors import SSLBenchError
from .contracts import KINDS as CONTRACT_KINDS
SCAFFOLD_KINDS = tuple(name for name, kind in CONTRACT_KINDS.items() if kind.scaffold)
from .plugins import KINDS, PluginHost
from .progress import LogReporter, Reporter, RichReporter, TeeReporter
from .records import load_records, load_results_dirs

plugin_option = click.option(
    "--plugin", "plugins", multiple=True, metavar="MODULE_OR_FILE",
    help="Load a local plugin (a module name or a .py file); repeatable.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sslbench")
def cli() -> None:
    """Benchmark self-supervised pretext tasks against a supervised baseline."""


@cli.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Read the sweep from a TOML file; flags override it.")
@click.option("--dataset", "datasets", metavar="NAMES",
              help="Data set(s), comma-separated: digits (default), imagefolder:PATH, cifar10, ...")
@click.option("--backbone", "backbones", metavar="NAMES",
              help="Backbone(s): smallcnn, resnet18 or any timm model name.")
@click.option("--tasks", metavar="NAMES",
              help="Pretext tasks, comma-separated (rotation, ...; A+B pretrains with A and "
                   "fine-tunes with B as an extra loss). The scratch baseline is always run.")
@click.option("--fractions", metavar="LIST",
              help="Label budgets as fractions of each class in (0, 1], e.g. 0.1,1.0 "
                   "(default 0.1,1.0 when no budget is given).")
@click.option("--labels-per-class", "labels_per_class", metavar="LIST",
              help="Label budgets as labels per class, e.g. 20,100,400 (RotNet's K).")
@click.option("--labels", metavar="LIST",
              help="Label budgets as labels in all, shared over the classes by their sizes, "
                   "at least one each, e.g. 40,250,4000.")
@click.option("--protocols", metavar="NAMES", help="Evaluation protocols (linear,finetune; knn).")
@click.option("--seeds", metavar="LIST", help="Seeds, e.g. 0,1,2.")
@click.option("--preset", type=str,
              help="Named settings and default grid (sslbench list presets; built in: quick, "
                   "the default, for a CPU; standard, for a GPU).")
@click.option("--resolution", type=int, help="Image side in pixels (preset setting).")
@click.option("--pretrain-epochs", type=int, help="Pretraining epochs (preset setting).")
@click.option("--set", "set_items", multiple=True, metavar="KEY=VALUE",
              help="Override a sweep setting (docs/settings.md); repeatable.")
@click.option("--opt", "opts", multiple=True, metavar="NAME.KEY=VALUE",
              help="Set an option of a task, protocol, backbone or data set, e.g. "
                   "linear.l2=[0.01,0.1] or jigsaw.permutations=1000 (sslbench list shows "
                   "them); repeatable.")
@click.option("--task-opt", "task_opts", multiple=True, metavar="TASK.KEY=VALUE",
              help="A task's option (the same as --opt); repeatable.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="auto (default) takes CUDA where present.")
@click.option("--compile", "compile_", is_flag=True, default=None,
              help="torch.compile the training forward passes (worth it on CUDA).")
@click.option("--stream", type=click.Choice(["auto", "never", "always"]), default=None,
              help="Hold images on the device, or stream them through DataLoader workers; "
                   "auto (default) streams data sets that do not fit.")
@click.option("--workers", type=click.IntRange(0, 64), default=None,
              help="DataLoader workers that decode streamed images (default: one per core, "
                   "at most 8).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Results directory (default results/<dataset>-<backbone>).")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Checkpoint and feature cache (default ~/.cache/sslbench).")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Where downloadable data sets live (default ./data).")
@click.option("--download/--no-download", default=None, help="Allow downloading data sets.")
@click.option("--split-seeds", "--split-seed", "split_seeds", metavar="LIST",
              help="Seeds of the train/test split of data sets without a fixed test split "
                   "(and of a fixed validation split); several add resampled splits to the "
                   "grid, e.g. 0,1,2. Default 0.")
@click.option("--dedup/--no-dedup", default=None,
              help="Drop duplicated images (exact and near copies found when the data set is "
                   "loaded) before splitting; see docs/data.md.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--executor", type=str, default=None,
              help="Where units of work run: local (default), ray, slurm. See docs/scaling.md.")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="local: run units side by side in N worker processes (each with "
                   "--cpus-per-job torch threads, default the cores shared out).")
@click.option("--ray-address", default=None, metavar="ADDRESS",
              help="ray: an existing cluster (else $RAY_ADDRESS, else a local Ray is started).")
@click.option("--cpus-per-job", type=int, default=None,
              help="ray/slurm: CPUs per unit; local --jobs: torch threads per worker.")
@click.option("--gpus-per-job", type=int, default=None, help="ray/slurm: GPUs per unit.")
@click.option("--slurm-partition", default=None, help="slurm: the partition.")
@click.option("--timeout-min", type=int, default=None, help="slurm: a job's time limit.")
@click.option("--slurm-opt", "slurm_opts", multiple=True, metavar="KEY=VALUE",
              help="slurm: any submitit/Slurm parameter (account=..., mem_gb=..., qos=...).")
@click.option("--slurm-cluster", default=None,
              help="slurm: submitit's cluster (slurm, local or debug); local runs the same "
                   "jobs as local processes.")
@click.option("--wait/--no-wait", default=None,
              help="slurm: wait for the jobs and print the leaderboard (default: return).")
@click.option("--checkpoint-every-min", type=float, default=None,
              help="A long pretraining's or fine-tuning's resumable snapshot, every N minutes (default 5).")
@click.option("--log-to", "log_to", default=None, metavar="NAMES",
              help="Experiment trackers to log every cell to, comma-separated: "
                   "tensorboard, mlflow (sslbench list trackers).")
@click.option("--against", "against", default=None, type=click.Path(file_okay=False),
              metavar="LEADERBOARD",
              help="Add the --tasks rows to a published leaderboard (a results folder, or a "
                   "leaderboard folder of a published site): its setting, splits and seeds, "
                   "its baseline verified by recomputing one cell, then adopted (docs/plugins.md, "
                   "'Add your method to a leaderboard').")
@click.option("--trust", is_flag=True,
              help="With --against: do not recompute a published cell to verify the "
                   "leaderboard (its data set and split files are still checked).")
@click.option("--dry-run", is_flag=True,
              help="List the units and cells that would run, with estimated times; run nothing.")
@plugin_option
def run(config_file, datasets, backbones, tasks, fractions, labels_per_class, labels,
        protocols, seeds, preset,
        resolution, pretrain_epochs, set_items, opts, task_opts, device,
        compile_,
        stream, workers, out, cache_dir, data_dir, download, split_seeds, dedup, quiet,
        executor, jobs, ray_address, cpus_per_job, gpus_per_job, slurm_partition, timeout_min,
        slurm_opts, slurm_cluster, wait, checkpoint_every_min, log_to, against, trust,
        dry_run, plugins) -> None:
    """Run (or resume) a sweep and print its leaderboard."""
    from . import timing
    timing.COMMAND_STARTED = time.time()      # the time account starts with the command
    if trust and not against:
        raise SSLBenchError("--trust goes with --against LEADERBOARD")
    file_values = load_toml(config_file) if config_file else None
    settings = parse_assignments(list(set_items), "--set")
    for key, value in (("resolution", resolution), ("pretrain_epochs", pretrain_epochs)):
        if value is not None:
            settings[key] = value
    options = _deep_merge(parse_task_options(list(task_opts)), parse_options(list(opts)))
    given = dict(
        datasets=datasets, backbones=backbones, tasks=tasks, fractions=fractions,
        labels_per_class=labels_per_class, labels=labels, protocols=protocols, seeds=seeds,
        preset=preset, settings=settings or None, options=options or None, device=device,
        compile=compile_, stream=stream, workers=workers, out=out,
        cache_dir=cache_dir, data_dir=data_dir, download=download, split_seeds=split_seeds,
        dedup=dedup,
        plugins=(list(plugins) or None), executor=executor, jobs=jobs, ray_address=ray_address,
        cpus_per_job=cpus_per_job, gpus_per_job=gpus_per_job, slurm_partition=slurm_partition,
        timeout_min=timeout_min, slurm_options=parse_assignments(list(slurm_opts), "--slurm-opt")
        or None, slurm_cluster=slurm_cluster, wait=wait, checkpoint_every_min=checkpoint_every_min,
        log_to=log_to)
    published = None
    if against:          # the published setting replaces the axes, settings and options
        from .against import against_values, read_leaderboard, refuse_changes
        published = read_leaderboard(against)
        refuse_changes({**given, "config_file": config_file, "set_items": set_items,
                        "resolution": resolution, "pretrain_epochs": pretrain_epochs},
                       published, parse_list(tasks, str, "--tasks") if tasks else [])
        given.update(against_values(published, given["tasks"], datasets, options))
    config = build_config(file_values, **given)
    host = _host(config.plugins)
    from .executors import make_executor
    engine = make_executor(config, host)     # unknown, a bad option, a stray flag: one line
    try:
        if published is not None and not dry_run:
            _verify_and_adopt(published, config, host, trust)
        _run_with(engine, config, host, dry_run, quiet)
    finally:
        engine.close()


def _verify_and_adopt(published, config, host, trust: bool) -> None:
    """--against: the leaderboard verified (its data set, splits and, unless --trust, one
    recomputed cell), then its records adopted into this run's --out."""
    from .against import adopt, verify
    from .runner import Sweep, default_out
    out = Path(config.out) if config.out else default_out(config)
    if out.resolve() == published.folder.resolve():
        raise SSLBenchError("--out must not be the leaderboard's own folder with --against "
                            "(its records are copied into --out)")
    Sweep(config, host)           # every name and option checked before anything is written
    check = verify(published, config, host, trust,
                   log=lambda m: click.echo(f"sslbench: {m}", err=True))
    n = adopt(published, out, config.tasks, check)
    click.echo(f"sslbench: {n} records adopted from {str(published.folder)!r}"
               + (" (verified: " + check["rule"] + ")" if check.get("recomputed")
                  else " (not recomputed: --trust)"), err=True)


def _run_with(engine, config, host, dry_run: bool, quiet: bool) -> None:
    """``sslbench run`` once its executor is made (the caller closes it)."""
    from .distributed import init_from_environment, is_writer, world_size_from_environment
    if world_size_from_environment() > 1 and not engine.in_process:
        raise SSLBenchError("under torchrun every process runs the sweep itself: use "
                            "--executor local without --jobs (--executor slurm "
                            "--gpus-per-job N runs each unit on N processes by itself)")
    if not dry_run:
        engine.start()                   # an engine that takes seconds to start (Ray)
    init_from_environment(config.device)      # under torchrun: join its process group
    # on a terminal, bars; redirected to a file or a CI log, plain lines (bars would show
    # nothing until the end); --quiet: neither. Every run also logs to OUT/logs/.
    reporter = _reporter(quiet or dry_run or not is_writer())
    log_file = None
    try:
        from . import dispatch      # torch and the runner: imported when a sweep runs
        from .runner import Sweep
        sweep = Sweep(config, host, reporter)
        if dry_run:
            from .plan import describe_plan
            click.echo(describe_plan(sweep))
            return
        engine.check(sweep.out)            # a bad engine option: one line, before any unit
        if is_writer():
            log_file = _open_log(sweep.out)
            if log_file is not None:
                reporter = sweep.reporter = TeeReporter(reporter, LogReporter(log_file))
        records = dispatch.run(sweep, engine)
    finally:
        reporter.close()
        if log_file is not None:
            log_file.close()
    note = engine.still_running()
    if note:                              # units left running on an engine (Slurm, no --wait)
        click.echo(note)
        return
    if not is_writer():
        return                                # the first torchrun process reports
    if records:                           # (a local Ray stops meanwhile, in its own thread)
        from ..leaderboard import SINGLE_SEED, Leaderboard
        board = Leaderboard(records, installed=host.find)
        click.echo(host.format_for("terminal").render(board))
        if not any(board.tested(d, b) for d, b in board.groups):
            click.echo(f"{SINGLE_SEED} (this run is a smoke test of the set-up, not a "
                       "measurement)")
    failed = [r for r in records if not r.ok]
    click.echo(f"{len(records)} records in {sweep.out}/records"
               + (f"; {len(failed)} failed (see their 'error')" if failed else ""))
    lacking, held = sweep.without_record()
    if lacking:
        # a unit skipped because another process claimed it: done only if that process
        # is alive and running it; otherwise the grid is not finished and the exit says so
        from .grid import units_of
        running = sum(len(u.cells) for u in units_of(lacking) if u.id in held)
        for unit_id, holder in sorted(held.items()):
            click.echo(f"unit {unit_id} is being run by process {holder.get('pid', '?')} on "
                       f"{holder.get('host', '?')} (since {holder.get('since', '?')}); "
                       f"`sslbench status {sweep.out}` follows it")
        orphans = len(lacking) - running
        if orphans:
            click.echo(f"sslbench: {orphans} cells of the grid have no record and no live "
                       "process is running them (a claim of a dead or unrelated process, or a "
                       "lost worker); running this command again runs them", err=True)
            sys.exit(1)
    sys.exit(1 if failed else 0)


def _reporter(quiet: bool) -> Reporter:
    """How a long command shows progress: bars on a terminal; redirected to a file or a CI
    log, plain lines as it goes (bars would show nothing until the end); quiet: nothing."""
    if quiet:
        return Reporter()
    return RichReporter() if sys.stderr.isatty() else LogReporter(sys.stderr)


def _open_log(out: Path):
    """This run's log file, ``OUT/logs/RUN.log`` (the time account's name), line-buffered;
    None (with a warning) where it cannot be written: a log must not stop a sweep."""
    from .time_accounts import run_name
    from .timing import COMMAND_STARTED
    path = Path(out) / "logs" / f"{run_name(COMMAND_STARTED or time.time())}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a", buffering=1, encoding="utf-8")
    except OSError as exc:
        click.echo(f"sslbench: warning: no log file {str(path)!r}: {exc.strerror or exc}",
                   err=True)
        return None


@cli.command("list")
@click.argument("kind", required=False,
                type=click.Choice([kind.plural for kind in CONTRACT_KINDS.values()]))
@plugin_option
def list_(kind, plugins) -> None:
    """List what the loaded plugins contribute, each with the plugin it comes from."""
    host = _host(list(plugins))
    console = Console()
    kinds = [next(k for k, v in CONTRACT_KINDS.items() if v.plural == kind)] if kind else list(KINDS)
    for k in kinds:
        table = Table(title=f"{k}s", title_justify="left")
        for col in ("name", "description", "options (--opt NAME.KEY=VALUE)", "plugin"):
            table.add_column(col)
        for row in host.describe(k):
            table.add_row(*row)
        console.print(table)


@cli.command()
@plugin_option
def plugins(plugins) -> None:
    """Which plugins are loaded, from which distribution and version, and what each gives."""
    host = _host(list(plugins))
    table = Table(title="plugins", title_justify="left")
    for col in ("plugin", "module", "from", "contributes"):
        table.add_column(col)
    given: dict[str, list[str]] = {}
    for kind in KINDS:
        for name, c in host.registry(kind).items():
            given.setdefault(c.plugin, []).append(f"{kind} {name}")
    for p in host.plugins:
        source = (f"{p.distribution} {p.version}" if p.distribution else p.source)
        what = ", ".join(sorted(given.get(p.name, []))) or "(hooks only)"
        table.add_row(p.name, p.module, source, f"FAILED: {p.error}" if p.error else what)
    Console().print(table)


@cli.command()
@click.argument("results_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", default=None,
              help="table (the default: the terminal's format), markdown, html, latex or csv "
                   "(sslbench list formats).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE.")
@click.option("--time", "show_time", is_flag=True,
              help="Instead of the leaderboard: where each run's wall time went (data, "
                   "pretraining, features, probes, fine-tuning, evaluation, I/O, other), "
                   "from OUT/time/.")
@plugin_option
def report(results_dirs, fmt, output, plugins, show_time) -> None:
    """Render the leaderboard of one or more results directories."""
    if show_time:
        from .time_accounts import read_runs, render_runs
        parts = []
        for d in results_dirs:
            runs = read_runs(Path(d), warn=lambda m: click.echo(f"sslbench: warning: {m}",
                                                                err=True))
            if not runs:
                raise SSLBenchError(f"no time account in {d!r} (a sweep of sslbench 0.5 "
                                    "or later writes OUT/time/)")
            parts.append(f"time account of {d} (seconds; docs/guarantees.md, 'Where the time went')\n\n"
                         + render_runs(runs))
        text = "\n\n".join(parts) + "\n"
        if output:
            atomic_write_text(Path(output), text)
            click.echo(f"wrote {output}")
        else:
            click.echo(text, nl=False)
        return
    host = _host(list(plugins))
    renderer = host.report_format(fmt) if fmt else host.format_for("terminal")
    def warn(message: str) -> None:
        click.echo(f"sslbench: warning: {message}", err=True)
    records = load_results_dirs(list(results_dirs), warn=warn)
    from ..leaderboard import Leaderboard   # pandas and scipy: imported when a report is made
    from .adopted import origin_note
    notes = [origin_note(Path(d), records, warn) for d in results_dirs]
    board = Leaderboard(records, installed=host.find,
                        note=" ".join(n for n in notes if n) or None)
    if output:
        board.asset_stem = Path(output).stem
    text = renderer.render(board)
    if output:
        output = Path(output)
        if renderer.plots:
            from ..leaderboard import Publication
            for name, files in Publication(board).render_figures().items():
                for fmt, data in files.items():
                    atomic_write_bytes(output.with_name(f"{output.stem}-{name}.{fmt}"), data)
        atomic_write_text(output, text)
        click.echo(f"wrote {output}")
    else:
        click.echo(text)


@cli.command()
@click.argument("out", type=click.Path())
@plugin_option
def status(out, plugins) -> None:
    """Finished, failed, running and missing cells of a results folder.

    The grid is that of the sweep that wrote the folder's newest record; a cell is finished
    when its record is of the configuration that grid computes now (else it is stale: a
    rerun of the sweep recomputes it). A cell is running while a live process (a driver, a
    Ray or Slurm worker) holds its unit's claim in OUT/.claims. For what a sweep would run,
    use `sslbench run ... --dry-run`."""
    from .progress import Reporter as Silent
    if not Path(out).is_dir():
        raise SSLBenchError(f"results directory {out!r} does not exist")
    records = load_records(out, warn=lambda m: click.echo(f"sslbench: warning: {m}", err=True))
    if not records:
        raise SSLBenchError(f"no result records in {out!r}")
    newest = max(records, key=lambda r: r.finished_at or "")
    # the record says what its grid was; it is data: its values are checked like a sweep
    # file's, and nothing it names is loaded (plugins come from the environment and the
    # user's --plugin only: a record naming a file must not make this command run it)
    from .config import build_config
    grid_keys = ("datasets", "backbones", "tasks", "fractions", "labels_per_class", "labels",
                 "protocols", "seeds",
                 "preset", "settings", "options", "task_options", "device", "stream",
                 "split_seeds", "dedup", "data_dir")
    given = {k: v for k, v in (newest.sweep or {}).items()
             if k in grid_keys and v is not None}
    try:
        config = build_config(given, out=out, plugins=list(plugins))
    except SSLBenchError as exc:
        raise SSLBenchError(f"record {newest.cell_id!r} in {out!r} does not describe a "
                            f"grid this version can rebuild: {exc}") from None
    host = _host(config.plugins)
    from .runner import Sweep
    try:
        sweep = Sweep(config, host, Silent())
    except SSLBenchError as exc:
        named = [p for p in (newest.sweep or {}).get("plugins") or []
                 if p not in plugins]
        hint = (f" (the sweep loaded --plugin {', '.join(map(repr, named))}: give it to "
                "status too; a record's plugins are never loaded from the record)"
                if named else "")
        raise SSLBenchError(f"{exc}{hint}") from None
    by_id = {r.cell_id: r for r in records}
    finished, failed, stale, missing = [], [], [], []
    for cell in sweep.cells:
        r = by_id.get(cell.id)
        if r is None:
            missing.append(cell.id)
        elif not r.ok:
            failed.append((cell.id, r.error or "?"))
        elif r.config_hash != cell.config_hash:
            stale.append(cell.id)
        else:
            finished.append(cell.id)
    grid = {c.id for c in sweep.cells}
    others = [r for r in records if r.cell_id not in grid]
    # the units a live process has claimed: their cells without a record are running
    from .claims import live_claims
    from .grid import units_of
    from .runner import CLAIMS_DIR
    claimed = live_claims(Path(out) / CLAIMS_DIR)
    without_record = set(missing)
    left = [cell for cell in sweep.cells if cell.id in without_record]
    running = [(unit, claimed[unit.id]) for unit in units_of(left) if unit.id in claimed]
    busy = {cell.id for unit, _ in running for cell in unit.cells}
    missing = [c for c in missing if c not in busy]
    click.echo(f"{out}: the grid of its newest sweep ({newest.get('finished_at', '?')}) has "
               f"{len(sweep.cells)} cells: {len(finished)} finished, {len(failed)} failed, "
               f"{len(stale)} stale (another configuration), {len(busy)} running, "
               f"{len(missing)} missing"
               + (f"; {len(others)} more records of other grids" if others else ""))
    for unit, holder in running:
        click.echo(f"  running unit {unit.id} ({len(unit.cells)} cells left): process "
                   f"{holder.get('pid', '?')} on {holder.get('host', '?')} since "
                   f"{holder.get('since', '?')}")
    shown = 20
    for label, items in (("failed ", [f"{c}: {e.splitlines()[0][:160]}" for c, e in failed]),
                         ("stale  ", stale), ("missing", missing)):
        for item in items[:shown]:
            click.echo(f"  {label} {item}")
        if len(items) > shown:
            click.echo(f"  {label} ... and {len(items) - shown} more")


@cli.command()
@click.argument("results_dirs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="The site's folder (index.html and one folder per leaderboard).")
@plugin_option
def publish(results_dirs, output, plugins) -> None:
    """Render finished sweeps as one static site: an index of leaderboards (data set x
    backbone x preset, each with its headline), a page per leaderboard (tables, statistics,
    plots, command, provenance, per-class accuracy and confusion matrices), and each
    leaderboard as JSON and CSV with its records. Relative links only (GitHub Pages-ready)."""
    from .publish import publish as write_site
    pages = write_site(list(results_dirs), Path(output), _host(list(plugins)),
                       warn=lambda m: click.echo(f"sslbench: warning: {m}", err=True))
    click.echo(f"wrote {pages[0]} and {len(pages) - 1} leaderboard pages")


@cli.command("export")
@click.argument("source", type=click.Path())
@click.option("--task", default=None, help="The task whose checkpoint (with SOURCE a folder).")
@click.option("--seed", type=int, default=None, help="Its seed.")
@click.option("--dataset", default=None, help="Its data set (when the folder has several).")
@click.option("--backbone", default=None, help="Its backbone (when the folder has several).")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
              help="The cache the sweep used (default ~/.cache/sslbench).")
@click.option("--keys", type=click.Choice(["auto", "timm", "sslbench"]), default="auto",
              show_default=True,
              help="Key names in the file: timm's own for a timm backbone (auto), or the "
                   "sslbench backbone's.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="NAME.safetensors to write (NAME.json is written beside it).")
def export_command(source, task, seed, dataset, backbone, cache_dir, keys, output) -> None:
    """Write a pretrained backbone as safetensors, with a JSON saying what it is.

    SOURCE is a record file (RESULTS/records/CELL.json) or a results folder narrowed to one
    checkpoint by --task and --seed. Load it with sslbench.load_backbone(PATH), or with
    plain timm for a timm backbone (docs/export.md)."""
    from .export import export_checkpoint, find_record
    from .runner import default_cache_dir
    def warn(message: str) -> None:
        click.echo(f"sslbench: warning: {message}", err=True)
    record = find_record(source, task, seed, dataset, backbone, warn)
    weights, meta = export_checkpoint(
        record, Path(cache_dir) if cache_dir else default_cache_dir(), Path(output), keys,
        warn=warn)
    click.echo(f"wrote {weights} and {meta} ({record.task}, seed {record.seed}, "
               f"{record.backbone} at {record.settings['resolution']} px, "
               f"from {record.cell_id})")


@cli.command()
@click.argument("task_name", metavar="TASK")
@click.option("--dataset", default=None,
              help="Where the images come from (default: the preset's first data set).")
@click.option("--resolution", type=click.IntRange(8, 1024), default=None,
              help="Image side (default: 64 to draw, the preset's to --check).")
@click.option("--count", type=click.IntRange(1, 16), default=4, show_default=True,
              help="How many images (rows).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--task-opt", "task_opts", multiple=True, metavar="TASK.KEY=VALUE")
@click.option("--data-dir", default="data", show_default=True, type=click.Path(file_okay=False))
@click.option("-o", "--output", default="preview.png", show_default=True,
              type=click.Path(dir_okay=False), help="PNG (or SVG/PDF) to write.")
@click.option("--check", is_flag=True,
              help="Instead of drawing: pretrain the task on the data set and print its "
                   "pretext accuracy on held-out images and its shortcut control, against "
                   "chance.")
@click.option("--preset", default=None, help="Settings for --check (default: the default preset).")
@click.option("--epochs", type=click.IntRange(1, 10000), default=None,
              help="Pretraining epochs for --check (default: the preset's).")
@plugin_option
def show(task_name, dataset, resolution, count, seed, task_opts, data_dir, output, check,
         preset, epochs, plugins) -> None:
    """Draw the inputs a task builds from a few images, with their targets (or, with
    --check, pretrain it and check it)."""
    host = _host(list(plugins))
    from .presets import chosen_preset
    chosen = chosen_preset(host, preset)
    preset = chosen.name
    if dataset is None:
        if not chosen.datasets:
            raise SSLBenchError(f"preset {preset!r} names no data set: give --dataset")
        dataset = chosen.datasets[0]
    options = parse_task_options(list(task_opts)).get(task_name, {})
    task = host.task(task_name).for_preset(preset, **options)
    if check:
        _check_task(host, task, dataset, resolution, seed, data_dir, preset, epochs)
        return
    import torch

    from ..data import DatasetRequest
    from ..images import ImageFiles, StreamedImages, as_images, default_workers
    from .preview import draw_preview, preview_task
    from .seeding import make_generator
    spec, argument = host.dataset(dataset)
    data = spec.load(DatasetRequest(argument, resolution or 64, data_dir))
    try:
        images = data.train_images
        images = (StreamedImages(images, torch.device("cpu"), default_workers())
                  if isinstance(images, ImageFiles) else as_images(images))
        rows = preview_task(task, images, make_generator(seed, "show"), count)
    except NotImplementedError as exc:
        raise SSLBenchError(str(exc)) from None
    draw_preview(rows, f"{task_name} on {dataset}: inputs and targets", Path(output))
    click.echo(f"wrote {output}")


def _check_task(host: PluginHost, task, dataset: str, resolution: int | None, seed: int,
                data_dir: str, preset: str, epochs: int | None) -> None:
    """``sslbench show TASK --check``: one pretraining and its two checks (sslbench._core.checks)."""
    import math

    from .checks import pretraining_checks
    from .config import resolve_settings
    from ..data import DatasetRequest, make_splits
    from ..images import default_workers
    from .placement import place
    from .seeding import derive_seed, seed_everything
    from ..training import autocast_dtype_for, resolve_device, to_device
    from .pretraining import pretrain
    if not task.pretrains:
        raise SSLBenchError(f"task {task.name!r} has no pretraining to check")
    settings = resolve_settings(host.get("preset", preset).settings,
                                {k: v for k, v in (("resolution", resolution),
                                                   ("pretrain_epochs", epochs))
                                 if v is not None}, preset=preset)
    res = int(settings["resolution"])
    task.validate(res)
    spec, argument = host.dataset(dataset)
    data = spec.load(DatasetRequest(argument, res, data_dir, split_seed=0))
    splits = make_splits(data, "labeled", settings["val_fraction"],
                         settings["pretext_holdout"], 0)
    device = resolve_device("auto")
    dtype = autocast_dtype_for(device)
    placed = place(splits, device, "auto", default_workers())
    backbone_spec = host.backbone(settings["backbone"])

    def fresh():
        import torch
        torch.manual_seed(derive_seed(seed, f"init:{settings['backbone']}"))
        backbone = backbone_spec.build(res, backbone_spec.resolve(preset, {}))
        backbone.set_input_stats(*placed.channel_stats)
        return backbone

    reporter = _reporter(quiet=False)
    try:
        backbone = to_device(fresh(), device)
        seed_everything(seed, f"pretrain:{task.name}")
        result = pretrain(task, backbone, placed.pretraining, settings, device, dtype, seed,
                          reporter, label=f"pretrain {task.name}")
        checks = pretraining_checks(task, backbone, result["head"], result["prepared"],
                                    placed.heldout, placed.pretraining, fresh, settings,
                                    device, dtype, seed, reporter)
    finally:
        reporter.close()
    held, control = checks["heldout"], checks["control"]
    click.echo(f"{task.name} on {dataset} ({res} px, {settings['backbone']}, "
               f"{settings['pretrain_epochs']} epochs, seed {seed}):")
    if held:
        click.echo(f"  held-out pretext accuracy {100 * held['accuracy']:.1f}% (chance "
                   f"{100 * held['chance']:.1f}%, {held['n']} targets)"
                   + ("; near chance: it learned next to nothing" if held["near_chance"] else ""))
    if control is None:
        click.echo("  no shortcut control")
        return
    acc, chance, n = control.get("accuracy"), control.get("chance"), control.get("n", 0)
    noise = 2 * math.sqrt(max(chance * (1 - chance), 1e-12) / max(1, n)) if n else 0
    verdict = ("at chance" if acc is not None and acc <= chance + noise else
               f"ABOVE chance by {100 * (acc - chance):.1f} points: something other than "
               "what the task is about gives the answer")
    click.echo(f"  control '{control['name']}' ({control['description']}): {100 * acc:.1f}% "
               f"(chance {100 * chance:.1f}%): {verdict}")


@cli.command("new-plugin")
@click.argument("name")
@click.option("--kind", type=click.Choice(list(SCAFFOLD_KINDS)),
              default="task", show_default=True)
@click.option("--dir", "directory", default=".", show_default=True,
              type=click.Path(file_okay=False), help="Where to create sslbench-NAME/.")
def new_plugin_command(name, kind, directory) -> None:
    """Write a pip-installable plugin package skeleton that passes its own test."""
    from .scaffold import new_plugin
    root = new_plugin(name, kind, Path(directory))
    click.echo(f"wrote {root}/ — next: cd {root} && pip install -e '.[test]' && pytest")


def _host(plugins: list[str]) -> PluginHost:
    host = PluginHost.from_environment(plugins)
    host.registry("task")          # calls every contribution hook: malformed plugins show now
    for p in host.failed:
        if p.source == "--plugin":     # asked for by name: its failure is the user's error
            raise SSLBenchError(f"plugin {host.describe_plugin(p.name)}: {p.error}")
        click.echo(f"sslbench: warning: plugin {host.describe_plugin(p.name)} is not used: "
                   f"{p.error}", err=True)
    return host


def main(argv: list[str] | None = None) -> None:
    """Entry point: every expected error is one line on stderr and exit status 2."""
    try:
        rv = cli.main(args=argv, prog_name="sslbench", standalone_mode=False)
    except SSLBenchError as exc:
        click.echo(f"sslbench: error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("sslbench: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"sslbench: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
