"""kws.splitting against independent references, on a tiny float64 DS-CNN (docs/splitting.md, tests 1-5).

1. S equals the brute-force Hessian combination H11 + H22 - H12 - H21 of the explicitly split two-copy network
   (torch.autograd.functional.hessian), for conv1, a non-final pointwise layer and the last pointwise layer; S_own
   alone does not, where S_dw matters.
2. split() with eps = 0 leaves the logits unchanged (BN in eval), several layers at once.
3. The loss change of a real split approaches (eps^2/2) * sum(lambda) as eps shrinks (SiLU, two consecutive
   layers split together).
4. Eigen residual ||S v - lambda v|| ~ 0 and lambda is the smallest eigenvalue (numpy reference).
5. Parameter and MAC counts after split() equal the increments that selection charged (sum(p.numel()), a hand
   count of deployed weights with BN folded, and kws.cost).
6. Under torchrun with 2 gloo CPU processes, each rank on its own (unequal) share of the batches, the all-reduced
   matrices are identical on both ranks and equal the one-process matrices over all batches (the mean over all
   clips, not a mean of per-rank means), and min_eigen + select_splits give the same plan everywhere; the
   matrix-free Lanczos pass (kws.splitting.lanczos) gives the same eigenpairs on both ranks, eigh's over all clips.

Run: .venv/bin/pytest tests/test_splitting.py -q   (about 15 s on 2 cores; the torchrun test is ~5 s)
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from kws import splitting
from kws.cost import cost
from kws.errors import KwsError
from kws.models import DSCNN, ArchSpec
from kws.splitting import SAMPLINGS, Budget, select_splits
from kws.splitting import rows as split_rows

# conv1 4 channels (3x3 kernel, fan-in 9), a stride-1 block and a stride-2 block, 12x6 input.
TINY = ArchSpec(
    conv1_width=4, widths=(3, 3), strides=((1, 1), (2, 2)), conv1_kernel=(3, 3), input_shape=(12, 6), activation="silu"
)


def _tiny_model(activation: str = "silu", seed: int = 0) -> DSCNN:
    """A float64 tiny net whose BatchNorms are far from identity, in eval mode."""
    torch.manual_seed(seed)
    model = DSCNN(replace(TINY, activation=activation)).double()
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(8, 12, 6, generator=gen, dtype=torch.float64), torch.randint(0, 12, (8,), generator=gen)


def _brute_force_s(model: DSCNN, layer: str, unit: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """H11 + H22 - H12 - H21 of the mean loss w.r.t. the two offspring filters of the eps = 0 split network.

    With f(t1, t2) = L(u(t1)/2 + u(t2)/2 + ...) (each copy carries half of the outgoing weight), H11 = u'^T L'' u'/4
    + L' u''/2 and H12 = u'^T L'' u'/4, so H11 + H22 - H12 - H21 = L' u'' = S exactly: the constant factor is 1.
    """
    width = model.spec.unit_widths[model.spec.unit_layer_names.index(layer)]
    w_old = dict(model.named_parameters())[f"{layer}.weight"]
    d = w_old[0].numel()
    net = splitting.split(model, {layer: {unit: torch.zeros(d, dtype=torch.float64)}}, 0.0).eval()
    tensors = {**{k: v.detach() for k, v in net.named_parameters()}, **dict(net.named_buffers())}
    w0 = tensors[f"{layer}.weight"]
    shape = (1, *w0.shape[1:])

    def loss(t: torch.Tensor) -> torch.Tensor:
        w = torch.cat([w0[:unit], t[:d].reshape(shape), w0[unit + 1 : width], t[d:].reshape(shape)])
        return F.cross_entropy(functional_call(net, {**tensors, f"{layer}.weight": w}, (x,)), y)

    h = torch.autograd.functional.hessian(loss, torch.cat([w0[unit].flatten(), w0[width].flatten()]))
    return h[:d, :d] + h[d:, d:] - h[:d, d:] - h[d:, :d]


@pytest.mark.parametrize("activation", ["silu", "hardswish"])
def test_s_matches_brute_force_hessian(batch, activation):
    model = _tiny_model(activation)
    exact = splitting.splitting_matrices(model, [batch])
    own = splitting.splitting_matrices(model, [batch], mode="own")
    for layer in ("conv1", "blocks.0.pw", "blocks.1.pw"):
        for unit in range(2):
            ref = _brute_force_s(model, layer, unit, *batch)
            scale = ref.abs().max()
            assert torch.allclose(exact[layer][unit], ref, rtol=0, atol=1e-10 * scale), (layer, unit)
    # S_dw matters where the unit feeds a depthwise layer, and vanishes for the last pointwise layer.
    ref = _brute_force_s(model, "blocks.0.pw", 1, *batch)
    assert (own["blocks.0.pw"][1] - ref).abs().max() > 0.05 * ref.abs().max()
    assert torch.allclose(own["blocks.1.pw"], exact["blocks.1.pw"], rtol=0, atol=1e-15)


def test_relu_surrogate_gives_finite_symmetric_matrices(batch):
    model = _tiny_model("relu")
    mats = splitting.splitting_matrices(model, [batch, batch], surrogate_beta=3.0, position_stride=2)
    for layer, width, d in zip(model.spec.unit_layer_names, model.spec.unit_widths, (9, 4, 3), strict=True):
        s = mats[layer]
        assert s.shape == (width, d, d) and torch.isfinite(s).all()
        assert torch.equal(s, s.transpose(1, 2))


def _frob_err(est: dict, ref: dict) -> float:
    return float(sum((est[k] - ref[k]).norm() ** 2 for k in ref) / sum(ref[k].norm() ** 2 for k in ref)) ** 0.5


def _draws(model, batches, mode: str, sampling: str, n: int) -> list[dict]:
    return [
        splitting.splitting_matrices(model, batches, mode=mode, position_stride=3, sampling=sampling, seed=s)
        for s in range(n)
    ]


@pytest.mark.parametrize("mode", ["exact", "own"])
def test_row_sampling_is_unbiased(mode):
    """Averaged over sampling seeds, subsampled matrices converge to the all-rows matrices (the reference)."""
    model = _tiny_model("relu")
    gen = torch.Generator().manual_seed(3)
    batches = [(torch.randn(16, 12, 6, generator=gen, dtype=torch.float64), torch.randint(0, 12, (16,), generator=gen))]
    ref = splitting.splitting_matrices(model, batches, mode=mode)
    draws = 100
    for sampling in ("uniform", "importance"):
        est = _draws(model, batches, mode, sampling, draws)
        mean = {k: sum(e[k] for e in est) / draws for k in ref}
        single = sum(_frob_err(e, ref) ** 2 for e in est) / draws
        # an unbiased mean of 100 draws sits ~sqrt(single / 100) from the reference; a missing 1/pi would not
        assert _frob_err(mean, ref) < 3 * (single / draws) ** 0.5, (sampling, _frob_err(mean, ref), single)
        assert single > 1e-3  # the draws really are subsamples


def _confident_model_and_batch(n: int, wrong: int, seed: int) -> tuple[DSCNN, torch.Tensor, torch.Tensor]:
    """A tiny ReLU net made confident (classifier x30), n clips labelled as it predicts except the first `wrong`."""
    model = _tiny_model("relu")
    with torch.no_grad():
        model.classifier.weight.mul_(30.0)
    x = torch.randn(n, 12, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:wrong] = (y[:wrong] + 5) % 12
    return model, x, y


@pytest.mark.parametrize("mode", ["exact", "own"])
def test_importance_sampling_beats_uniform_when_few_clips_carry_the_loss(mode):
    """A confident network that gets 2 of 16 clips wrong: those clips carry S, importance sampling keeps them, and its
    mean squared error (against the all-rows matrices) is far below uniform sampling of as many rows."""
    model, x, y = _confident_model_and_batch(16, wrong=2, seed=3)
    ref = splitting.splitting_matrices(model, [(x, y)], mode=mode)
    mse = {s: sum(_frob_err(e, ref) ** 2 for e in _draws(model, [(x, y)], mode, s, 30)) / 30 for s in SAMPLINGS}
    assert mse["importance"] < 0.1 * mse["uniform"], mse


def test_importance_rows_keep_the_heavy_rows_and_the_budget():
    score = torch.cat(
        [torch.full((5,), 1e6), torch.rand(995, generator=torch.Generator().manual_seed(0)), torch.zeros(24)]
    )
    counts, heavy = [], 0
    for seed in range(50):
        rows, weight = split_rows.sample_rows(score, 8, "importance", torch.Generator().manual_seed(seed))
        counts.append(rows.numel())
        heavy += int(torch.isin(torch.arange(5), rows).all())
        assert not (rows >= 1000).any()  # zero-weight rows carry nothing and are never drawn
        assert torch.all(weight >= 1 - 1e-12)  # 1 / pi with pi <= 1
    assert heavy == 50  # rows with pi = 1 are certain
    assert abs(sum(counts) / 50 - 1024 / 8) < 6  # Poisson sampling: expected count = rows / stride


def test_split_with_zero_eps_preserves_logits(batch):
    model = _tiny_model()
    gen = torch.Generator().manual_seed(2)
    plan = {
        "conv1": {0: torch.randn(9, generator=gen, dtype=torch.float64), 3: torch.randn(9, generator=gen)},
        "blocks.0.pw": {1: torch.randn(4, generator=gen, dtype=torch.float64)},
        "blocks.1.pw": {0: torch.randn(3, generator=gen), 2: torch.randn(3, generator=gen)},
    }
    grown = splitting.split(model, plan, 0.0)
    assert grown.spec.unit_widths == (6, 4, 5)
    assert next(grown.parameters()).dtype == torch.float64 and not grown.training
    with torch.no_grad():
        assert torch.allclose(grown(batch[0]), model(batch[0]), rtol=0, atol=1e-13)
    # The offspring is appended: channel 4 of conv1 is a copy of channel 0, and the classifier columns are halved.
    assert torch.equal(grown.conv1.weight[4], model.conv1.weight[0])
    assert torch.equal(grown.classifier.weight[:, 3], model.classifier.weight[:, 0] / 2)


def test_loss_change_matches_prediction(batch):
    model = _tiny_model()
    lam_v = splitting.min_eigen(splitting.splitting_matrices(model, [batch]))
    plan, lams = {}, []
    for layer in ("conv1", "blocks.0.pw"):  # two consecutive layers: layer 2's directions are remapped by split()
        lam, v = lam_v[layer]
        for j in torch.argsort(lam)[:2].tolist():
            plan.setdefault(layer, {})[j] = v[j]
            lams.append(lam[j].item())
    with torch.no_grad():
        base = F.cross_entropy(model(batch[0]), batch[1]).item()
        ratios = []
        for eps in (0.3, 0.1, 0.01):
            new = F.cross_entropy(splitting.split(model, plan, eps)(batch[0]), batch[1]).item()
            ratios.append((new - base) / (eps**2 / 2 * sum(lams)))
    errors = [abs(r - 1) for r in ratios]
    assert errors[2] < 1e-3 and errors[2] < errors[1] < errors[0], ratios


def test_eigen_residual_and_minimality(batch):
    mats = splitting.splitting_matrices(_tiny_model(), [batch])
    for layer, (lam, v) in splitting.min_eigen(mats).items():
        s = mats[layer]
        resid = torch.einsum("cde,ce->cd", s, v) - lam[:, None] * v
        assert resid.norm(dim=1).max() < 1e-12 * s.abs().max()
        assert torch.allclose(v.norm(dim=1), torch.ones(len(lam), dtype=torch.float64))
        ref = np.linalg.eigvalsh(s.numpy()).min(axis=1)
        assert np.allclose(lam.numpy(), ref, rtol=0, atol=1e-14)


def _deployed_params(model: DSCNN) -> int:
    """Hand count with BN folded: every conv weight plus one bias per output channel, plus the classifier."""
    total = sum(p.numel() for p in model.classifier.parameters())
    for mod in model.modules():
        if isinstance(mod, torch.nn.Conv2d):
            total += mod.weight.numel() + mod.out_channels
    return total


def test_cost_after_split_equals_selection_increments(batch):
    model = _tiny_model()
    eigs = splitting.min_eigen(splitting.splitting_matrices(model, [batch]))
    eigs = {k: (-torch.arange(1.0, len(lam) + 1, dtype=torch.float64), v) for k, (lam, v) in eigs.items()}
    sel = select_splits(model.spec, eigs, Budget(), eps=0.01, growth_cap=0.5)
    assert len({c.layer for c in sel.chosen}) >= 2
    grown = splitting.split(model, sel.plan, 0.01)
    assert grown.spec == sel.new_spec
    before, after = cost(model.spec), cost(grown.spec)
    assert sum(c.d_params for c in sel.chosen) == after.params_deployed - before.params_deployed
    assert sum(c.d_params for c in sel.chosen) == _deployed_params(grown) - _deployed_params(model)
    assert sum(c.d_params_trainable for c in sel.chosen) == (
        sum(p.numel() for p in grown.parameters()) - sum(p.numel() for p in model.parameters())
    )
    assert sum(c.d_macs for c in sel.chosen) == after.macs - before.macs


def test_bad_input_is_a_one_line_error(batch):
    model = _tiny_model()
    with pytest.raises(KwsError, match="mode"):
        splitting.splitting_matrices(model, [batch], mode="random")
    with pytest.raises(KwsError, match="no clips"):
        splitting.splitting_matrices(model, [])
    with pytest.raises(KwsError, match="out of range"):
        splitting.split(model, {"conv1": {7: torch.zeros(9)}}, 0.0)
    with pytest.raises(KwsError, match="entries"):
        splitting.split(model, {"conv1": {0: torch.zeros(5)}}, 0.0)


def _dist_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of unequal sizes: batches[0::2] has 15 clips, batches[1::2] 5, so a mean of per-rank means differs."""
    gen = torch.Generator().manual_seed(3)
    return [
        (torch.randn(n, 12, 6, generator=gen, dtype=torch.float64), torch.randint(0, 12, (n,), generator=gen))
        for n in (8, 3, 7, 2)
    ]


def _dist_plan(eigs: dict) -> dict[str, dict[int, torch.Tensor]]:
    """The split plan of the distributed test (also run by tests/_dist_splitting_worker.py on every rank)."""
    return select_splits(TINY, eigs, Budget(), eps=0.01, growth_cap=1.0).plan


def test_torchrun_two_ranks_all_reduce_equals_one_process_over_all_batches(tmp_path):
    worker = Path(__file__).parent / "_dist_splitting_worker.py"
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(worker)]
    done = subprocess.run([*cmd, str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    batches = _dist_batches()
    ref = splitting.splitting_matrices(_tiny_model(), batches)
    # What a wrong normalisation would give: the mean of the two ranks' own means (15 and 5 clips).
    halves = [splitting.splitting_matrices(_tiny_model(), batches[r::2]) for r in (0, 1)]
    assert set(r0["mats"]) == set(r1["mats"]) == set(ref)
    for name, s in ref.items():
        assert torch.equal(r0["mats"][name], r1["mats"][name]), name  # bitwise: every rank decides the same
        scale = s.abs().max()
        assert torch.allclose(r0["mats"][name], s, rtol=0, atol=1e-10 * scale), name
        assert torch.allclose((15 * halves[0][name] + 5 * halves[1][name]) / 20, s, rtol=0, atol=1e-10 * scale)
        wrong = (halves[0][name] + halves[1][name]) / 2
        assert (wrong - s).abs().max() > 1e-3 * scale, name  # the test can tell the two normalisations apart
    for name, lam in r0["lam"].items():
        assert torch.equal(lam, r1["lam"][name]), name
    # The matrix-free pass all-reduces each product: identical on both ranks, and eigh's lambda_min over all clips.
    ref_eigs = splitting.min_eigen(ref)
    for name, (lam, v) in r0["lanczos"].items():
        assert torch.equal(lam, r1["lanczos"][name][0]) and torch.equal(v, r1["lanczos"][name][1]), name
        assert torch.allclose(lam, ref_eigs[name][0], rtol=0, atol=1e-10 * ref[name].abs().max()), name
    # The same plan on both ranks (bitwise), and the one-process plan (directions up to the eigenvector's sign).
    plan0, plan1 = r0["plan"], r1["plan"]
    ref_plan = _dist_plan(splitting.min_eigen(ref))
    assert sum(len(units) for units in ref_plan.values()) >= 2
    assert {k: sorted(v) for k, v in plan0.items()} == {k: sorted(v) for k, v in plan1.items()}
    assert {k: sorted(v) for k, v in plan0.items()} == {k: sorted(v) for k, v in ref_plan.items()}
    for layer, units in ref_plan.items():
        for j, v in units.items():
            assert torch.equal(plan0[layer][j], plan1[layer][j]), (layer, j)
            sign = torch.sign(torch.dot(plan0[layer][j], v))
            assert torch.allclose(sign * plan0[layer][j], v, rtol=0, atol=1e-8), (layer, j)


def test_importance_clips_are_unbiased_and_favour_the_misclassified():
    """Clips drawn by ||softmax - onehot|| with 1/pi weights: the mean over draws converges to the all-clip matrices
    (Horvitz-Thompson), the clips the network gets wrong are always kept, and the error beats a stratified subset."""
    # 4 wrong clips carry S; the confident right ones add almost nothing
    model, x, y = _confident_model_and_batch(48, wrong=4, seed=4)
    ref = splitting.splitting_matrices(model, [(x, y)], mode="exact")
    errs = {}
    for how in ("importance", "stratified"):
        cfg = replace(splitting.FAST, clips=12, batch_size=5, position_stride=1, clip_sampling=how, dtype="float64")
        est = []
        for seed in range(40):
            batches = splitting.pass_batches(x, y, replace(cfg, seed=seed), model)
            if how == "importance":
                kept = torch.cat([b[0] for b in batches])
                assert all(any(torch.equal(k, x[i]) for k in kept) for i in range(4))
                assert abs(sum(b[3] for b in batches) - 48) < 1e-9
            est.append(splitting.splitting_matrices(model, batches, mode="exact", dtype=torch.float64))
        mean = {k: sum(e[k] for e in est) / len(est) for k in ref}
        errs[how] = sum(_frob_err(e, ref) ** 2 for e in est) / len(est)
        if how == "importance":
            assert _frob_err(mean, ref) < 3 * (errs[how] / len(est)) ** 0.5 + 1e-9
    assert errs["importance"] < 0.1 * errs["stratified"], errs
