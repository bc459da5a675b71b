"""The growth loop of `kws grow`: a DS-CNN seed grown by splitting steepest descent up to a hard budget.

Liu, Wu, Wang, "Splitting Steepest Descent for Growing Neural Architectures" (NeurIPS 2019): train, compute the
splitting matrix of every unit, split the units with the most negative minimum eigenvalue along its eigenvector,
train again. Here the budget is the target's: deployed parameters, MACs and peak int8 activation bytes, all
counted by kws.cost from the spec, never exceeded (kws.splitting.selection enforces it per split).

Schedule ("grow early, train long", the recipe that reached parity in the prototypes of docs/splitting.md): a short
seed stage, short rounds with a restarted learning-rate schedule, then a long final stage. The final stage either
continues the grown network (function-preserving warm start) or, with finish="retrain", trains the grown
architecture from scratch for the same total number of epochs (growth as architecture search).

Every round is written to rounds/round_NNN/ atomically (a temporary folder renamed into place) and never
overwritten; each phase draws its randomness from (seed, phase) alone, so --resume continues from the last complete
round and reproduces the uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from kws import checkpoint, data, distributed, files, models, splitting, train
from kws.accuracy import evaluate, mean_loss
from kws.cost import cost
from kws.errors import KwsError
from kws.features import features
from kws.frontend import FrontendConfig
from kws.recipe import GrowConfig, TrainConfig
from kws.resume import CONFIG_FILE, DATA_FILE, check_grow, load_rounds, remove_grow_temps


def budget_of(cfg: GrowConfig) -> splitting.Budget:
    """The recipe's hard limits in the units kws.splitting.selection counts (params, MACs, bytes)."""
    return splitting.Budget(
        params=None if cfg.budget_kparams is None else int(cfg.budget_kparams * 1000),
        macs=None if cfg.budget_mmacs is None else int(cfg.budget_mmacs * 1e6),
        ram_bytes=None if cfg.budget_ram_kb is None else int(cfg.budget_ram_kb * 1024),
        flash_bytes=None if cfg.budget_flash_kb is None else int(cfg.budget_flash_kb * 1024),
        instructions=None if cfg.budget_ms is None else int(cfg.budget_ms * cfg.clock_mhz * 1e3),
        core=cfg.core,
        engine=cfg.engine,
    )


USE_KEYS = ("params", "macs", "ram_bytes", "flash_bytes", "instructions")


def budget_figures(cfg: GrowConfig, spec: models.ArchSpec, num_classes: int) -> dict:
    """What each budget counts for `spec` (None where the budget is unset and the count needs the engine)."""
    b, c = budget_of(cfg), cost(spec, num_classes)
    timed = b.instructions is not None or cfg.engine == "kws"
    instr = b.predicted_instructions(spec, num_classes) if timed else None
    return dict(
        params=c.params_deployed,
        macs=c.macs,
        ram_bytes=b.ram_of(spec, c, num_classes),
        flash_bytes=b.flash_of(spec, num_classes) if cfg.engine == "kws" else None,
        instructions=None if instr is None else int(round(instr)),
    )


def seed_spec(cfg: GrowConfig) -> models.ArchSpec:
    spec = models.resolve_arch(cfg.seed_arch)
    if cfg.seed_width is not None:
        spec = spec.uniform(cfg.seed_width)
    return replace(spec, activation=cfg.activation)


def check_budget(cfg: GrowConfig, spec: models.ArchSpec, num_classes: int) -> None:
    """A budget below the seed, or no budget at all, is a one-line error."""
    b = budget_of(cfg)
    if all(x is None for x in (b.params, b.macs, b.ram_bytes, b.flash_bytes, b.instructions)):
        raise KwsError(
            "give at least one budget: --budget-kparams, --budget-mmacs, --budget-ram-kb, --budget-flash-kb, "
            "--budget-ms or --target"
        )
    c = cost(spec, num_classes)
    if b.instructions is not None:
        ms = b.charged_instructions(spec, num_classes) / (cfg.clock_mhz * 1e3)
        if ms > cfg.budget_ms:
            raise KwsError(
                f"--budget-ms: the seed already needs {ms:.1f} ms per inference (predicted, with the cost model's "
                f"stated error) on {cfg.core} at {cfg.clock_mhz:g} "
                f"MHz > budget {cfg.budget_ms:g}; raise the budget or --clock-mhz, or use a smaller --seed-width"
            )
    for name, limit, have, unit in (
        ("--budget-kparams", b.params, c.params_deployed, "params"),
        ("--budget-mmacs", b.macs, c.macs, "MACs"),
        ("--budget-ram-kb", b.ram_bytes, b.ram_of(spec, c, num_classes), f"bytes of RAM ({cfg.engine} engine)"),
        ("--budget-flash-kb", b.flash_bytes, b.flash_of(spec, num_classes) if b.flash_bytes else 0, "bytes of flash"),
    ):
        if limit is not None and have > limit:
            raise KwsError(
                f"{name}: the seed already needs {have:,} {unit} > budget {limit:,}; "
                f"raise the budget or use a smaller --seed-width"
            )


def _phase_config(cfg: GrowConfig, epochs: int, phase: int) -> TrainConfig:
    return replace(cfg.train, epochs=epochs, seed=cfg.seed * 1009 + phase)


def _spectra(eigs: dict) -> dict:
    """Per layer: count of negative minimum eigenvalues and their quantiles (for the report)."""
    out = {}
    for layer, (lam, _) in eigs.items():
        lam = lam.double().cpu().numpy()
        out[layer] = dict(units=int(lam.size), negative=int((lam < 0).sum()), lambda_min=lam.tolist())
    return out


def _write_round(run_dir: Path, index: int, model: models.DSCNN, record: dict) -> None:
    """rounds/round_NNN/ with weights, spec and the round record; written to a temp folder, renamed into place."""
    final = run_dir / "rounds" / f"round_{index:03d}"
    if final.exists():
        return  # rounds are never overwritten
    tmp = run_dir / "rounds" / f".tmp_round_{index:03d}_{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(model.state_dict(), tmp / "model.pt")
    (tmp / "arch.json").write_text(json.dumps(model.spec.to_dict(), indent=1))
    (tmp / "round.json").write_text(json.dumps(record, indent=1))
    os.replace(tmp, final)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _round_record(index: int, model: models.DSCNN, num_classes: int, val_acc: float, **extra) -> dict:
    c = cost(model.spec, num_classes)
    return dict(
        round=index,
        widths=list(model.spec.unit_widths),
        params=c.params_deployed,
        macs=c.macs,
        peak_activation_bytes=c.peak_activation_bytes,
        val_acc=val_acc,
        **extra,
    )


def split_pass_config(
    cfg: GrowConfig, spec: models.ArchSpec, generator: torch.Generator | None = None
) -> splitting.SplitPassConfig:
    """This round's splitting-pass preset (splitting.resolve_preset: FAST or WIDE by cfg.split_solver and the
    network's width) with the recipe's overrides and selector; its seed is drawn from the round's generator."""
    seed = 0 if generator is None else int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return splitting.resolve_preset(
        cfg.split_solver,
        spec,
        clips=cfg.split_clips,
        position_stride=cfg.position_stride,
        sampling=cfg.split_sampling,
        clip_sampling=cfg.split_clip_sampling,
        lanczos_iters=cfg.lanczos_iters,
        mode=cfg.selector,
        surrogate_beta=cfg.surrogate_beta,
        seed=seed,
    )


def _select(cfg: GrowConfig, model: models.DSCNN, train_xy: tuple, num_classes: int, generator: torch.Generator):
    """One splitting decision: the pass's eigenpairs (unless random), then budget-aware greedy selection."""
    t0 = time.perf_counter()
    if cfg.selector == "random":
        sel = splitting.select_random(
            model.spec,
            budget_of(cfg),
            growth_cap=cfg.growth_per_round,
            max_width=cfg.max_width,
            cost_metric=cfg.cost_metric,
            num_classes=num_classes,
            generator=generator,
        )
        return sel, {}, None, time.perf_counter() - t0
    pass_cfg = split_pass_config(cfg, model.spec, generator)
    batches = splitting.pass_batches(*train_xy, pass_cfg, model)
    eigs = splitting.pass_eigs(model, batches, pass_cfg, progress=True)
    sel = splitting.select_splits(
        model.spec,
        eigs,
        budget_of(cfg),
        eps=cfg.eps,
        tau=cfg.tau,
        growth_cap=cfg.growth_per_round,
        max_width=cfg.max_width,
        cost_metric=cfg.cost_metric,
        num_classes=num_classes,
    )
    return sel, _spectra(eigs), asdict(pass_cfg), time.perf_counter() - t0


def grow(
    data_root: str | Path | None,
    out_dir: str | Path,
    cfg: GrowConfig,
    *,
    task: data.TaskConfig | None = None,
    frontend: FrontendConfig | None = None,
    resume: bool = False,
) -> dict:
    """Grow a DS-CNN on the dataset at `data_root` into run directory `out_dir`; returns the growth report.

    With resume=True the run continues from its last complete round; cfg, and data_root, task and frontend when
    given, must equal the run's record (grow_config.json, grow_data.json): each that differs is named in one
    KwsError, raised before anything is written. Every setting is checked before the dataset loads.
    """
    out = Path(out_dir)
    for flag, value in (("--split-stride", cfg.position_stride), ("--split-clips", cfg.split_clips)):
        if value is not None and value < 1:
            raise KwsError(f"{flag} ({value}) must be >= 1")
    if cfg.selector != "random":  # a bad pass setting fails now, not after the seed stage: check both presets
        for solver in ("dense", "lanczos") if cfg.split_solver == "auto" else (cfg.split_solver,):
            split_pass_config(replace(cfg, split_solver=solver), seed_spec(cfg))
    if out.exists() and any(out.iterdir()) and not resume:
        raise KwsError(f"--out {out} already holds a run; pass --resume to continue it or choose another folder")
    if resume and out.is_dir():
        data_root, task, frontend = check_grow(out, cfg, data_root, task, frontend)
    if data_root is None:
        raise KwsError("kws grow needs --data (a resumed run takes it from its grow_data.json)")
    task, frontend = task or data.TaskConfig(), frontend or FrontendConfig()
    num_classes = len(task.labels)
    spec = seed_spec(cfg)
    check_budget(cfg, spec, num_classes)  # before the dataset loads: a budget error costs no waiting
    data.check_words(data_root, task.words)
    records, model = ([], None)
    if resume and out.is_dir():
        remove_grow_temps(out)
        records, model = load_rounds(out, num_classes)  # a damaged round is reported before the data loads
    ds = data.load_dataset(data_root, task=task, frontend=frontend)
    out.mkdir(parents=True, exist_ok=True)
    ds.issues.report(ds.root, out, "grow")  # one line; the list goes to audio_issues.json
    if not (out / CONFIG_FILE).is_file():  # a resume never rewrites the run's record
        files.atomic_write_json(out / CONFIG_FILE, cfg.to_dict())
    if not (out / DATA_FILE).is_file():
        record = dict(data_root=str(data_root), task=task.to_dict(), frontend=frontend.to_dict())
        files.atomic_write_json(out / DATA_FILE, record)

    train_split = ds.splits["train"]
    warning = distributed.cpu_fallback_warning(len(train_split.labels), distributed.select_device())
    if warning:
        _log(f"grow: {warning}")
    train_feats = features(train_split, frontend)
    train_xy = (torch.from_numpy(train_feats), torch.from_numpy(train_split.labels))
    idx = data.stratified_subset(train_split.labels, cfg.split_clips or splitting.FAST.clips, seed=cfg.seed)
    feats, split_labels = train_feats[idx], train_split.labels[idx]  # where the loss change of each split is measured
    val_feats, val_labels = features(ds.splits["validation"], frontend), ds.splits["validation"].labels

    if model is None:  # round 0: train the seed
        t0 = time.perf_counter()
        torch.manual_seed(cfg.seed)
        model = models.DSCNN(spec, num_classes=num_classes)
        train.fit(model, ds, _phase_config(cfg, cfg.seed_epochs, 0), progress=True)
        acc = evaluate(model, val_feats, val_labels)["acc"]
        rec = _round_record(0, model, num_classes, acc, train_s=time.perf_counter() - t0)
        _write_round(out, 0, model, rec)
        records.append(rec)
        _log(f"grow: seed {list(model.spec.unit_widths)} params {rec['params']:,} val {acc:.3f}")
    else:
        _log(f"grow: resuming after round {records[-1]['round']} ({records[-1]['params']:,} params)")

    while records[-1].get("stop") is None and len(records) <= cfg.max_rounds:
        index = len(records)
        gen = torch.Generator().manual_seed(cfg.seed * 7919 + index)
        sel, spectra, pass_cfg, split_s = _select(cfg, model, train_xy, num_classes, gen)
        if not sel.chosen:
            records[-1]["stop"] = sel.stopped_reason or "no unit can be split within the budget"
            break
        loss_before = mean_loss(model, feats, split_labels)
        model = splitting.split(model, sel.plan, cfg.eps)
        actual = mean_loss(model, feats, split_labels) - loss_before
        t0 = time.perf_counter()
        train.fit(model, ds, _phase_config(cfg, cfg.epochs_per_round, index), progress=True)
        acc = evaluate(model, val_feats, val_labels)["acc"]
        rec = _round_record(
            index,
            model,
            num_classes,
            acc,
            splits=len(sel.chosen),
            predicted_dloss=float(sel.predicted_dloss),
            actual_dloss=float(actual),
            split_s=split_s,
            split_pass=pass_cfg,
            train_s=time.perf_counter() - t0,
            spectra=spectra,
            chosen=[c._asdict() for c in sel.chosen],
            stopped=sel.stopped_reason,
        )
        _write_round(out, index, model, rec)
        records.append(rec)
        _log(
            f"grow: round {index}: +{len(sel.chosen)} units -> {list(model.spec.unit_widths)} "
            f"params {rec['params']:,} val {acc:.3f} (dL predicted {rec['predicted_dloss']:.2e}, "
            f"actual {actual:.2e})"
        )
    return _finish(out, cfg, ds, model, records, num_classes, resume)


def _finish(
    out: Path,
    cfg: GrowConfig,
    ds: data.Dataset,
    grown: models.DSCNN,
    records: list[dict],
    num_classes: int,
    resume: bool,
) -> dict:
    """Final stage(s), test accuracy, the run directory (loadable by load_run) and the growth report."""
    growth_epochs = cfg.seed_epochs + cfg.epochs_per_round * (len(records) - 1)
    if cfg.total_epochs is not None:
        cfg = replace(cfg, final_epochs=max(cfg.total_epochs - growth_epochs, 1))
    total_epochs = growth_epochs + cfg.final_epochs
    finishes = {"continue", "retrain"} if cfg.compare_retrain else {cfg.finish}
    test = ds.splits["test"]
    test_feats = features(test, ds.frontend)
    results = {}
    for how in sorted(finishes):
        final_dir = out / ("final" if how == cfg.finish else f"final_{how}")
        if how == "continue":
            model = grown
            epochs, phase = cfg.final_epochs, 10_000
        else:
            torch.manual_seed(cfg.seed + 1)
            model = models.DSCNN(grown.spec, num_classes=num_classes)
            epochs, phase = total_epochs, 20_000
        t0 = time.perf_counter()
        train.fit(model, ds, _phase_config(cfg, epochs, phase), run_dir=final_dir, resume=resume, progress=True)
        run = checkpoint.load_run(final_dir)
        ev = evaluate(run.model, test_feats, test.labels)
        val = ds.splits["validation"]
        val_acc = evaluate(run.model, features(val, ds.frontend), val.labels)["acc"]
        results[how] = dict(
            run_dir=str(final_dir), epochs=epochs, test_acc=ev["acc"], val_acc=val_acc, train_s=time.perf_counter() - t0
        )
        _log(f"grow: final ({how}, {epochs} epochs): test {ev['acc']:.3f}")
    c = cost(grown.spec, num_classes)
    budget = budget_of(cfg)
    predicted = budget_figures(cfg, grown.spec, num_classes)
    report = dict(
        config=cfg.to_dict(),
        rounds=records,
        final=results,
        chosen_finish=cfg.finish,
        arch=grown.spec.to_dict(),
        params=c.params_deployed,
        macs=c.macs,
        peak_activation_bytes=c.peak_activation_bytes,
        total_epochs=total_epochs,
        budget=dict(
            params=budget.params,
            macs=budget.macs,
            ram_bytes=budget.ram_bytes,
            flash_bytes=budget.flash_bytes,
            instructions=budget.instructions,
            engine=budget.engine,
            core=budget.core,
            clock_mhz=cfg.clock_mhz,
        ),
        predicted=predicted,
        budget_use={k: (predicted[k] / getattr(budget, k) if getattr(budget, k) else None) for k in USE_KEYS},
    )
    files.atomic_write_json(out / "growth_report.json", report)
    files.atomic_write_text(out / "growth_report.md", growth_markdown(report))
    return report


def growth_markdown(report: dict) -> str:
    """The growth report as a Markdown table, one row per round."""
    lines = [
        "# Growth report",
        "",
        f"Final architecture widths {report['arch']['conv1_width']}, {report['arch']['widths']}: "
        f"{report['params']:,} deployed params, {report['macs']:,} MACs, "
        f"{report['peak_activation_bytes']:,} B peak activations.",
        "",
        "| round | widths | params | MACs | val acc | splits | negative eig. | dL predicted | dL actual |"
        " split s | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rounds"]:
        neg = sum(s["negative"] for s in r.get("spectra", {}).values())
        units = sum(s["units"] for s in r.get("spectra", {}).values())
        lines.append(
            f"| {r['round']} | {r['widths']} | {r['params']:,} | {r['macs']:,} | {r['val_acc']:.3f} | "
            f"{r.get('splits', '')} | {f'{neg}/{units}' if units else ''} | "
            f"{r.get('predicted_dloss', float('nan')):.2e} | {r.get('actual_dloss', float('nan')):.2e} | "
            f"{r.get('split_s', 0):.1f} | {r.get('train_s', 0):.1f} |"
        )
    lines += ["", "| finish | epochs | test acc |", "|---|---|---|"]
    for how, f in report["final"].items():
        lines.append(f"| {how} | {f['epochs']} | {f['test_acc']:.4f} |")
    use = ", ".join(f"{k} {v:.1%}" for k, v in report["budget_use"].items() if v is not None)
    lines += [
        "",
        f"Budget use: {use}.",
        "",
        "With ReLU the splitting index uses a softplus surrogate for a'' (docs/splitting.md): the predicted loss"
        " change is then approximate; with SiLU it is exact to second order, with hard swish exact where |z| < 3.",
    ]
    return "\n".join(lines) + "\n"
