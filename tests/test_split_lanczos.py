"""kws.splitting.lanczos (matrix-free splitting eigenpairs) against independent references.

1. The matrix-free product S v equals the formed matrices of kws.splitting (themselves checked against a brute-force
   Hessian in test_splitting.py) times v, for every layer, both modes, SiLU and ReLU, a stride-2 depthwise layer
   included (the transposed convolution's output padding), to 1e-12 in float64.
2. With k = D steps the Lanczos eigenpairs equal numpy's eigh of the formed matrices; with k < D the Ritz value
   never undercuts the true lambda_min (variational bound) and converges on a spectrum with a gap.
3. Operators of low rank (the Krylov space closes before D steps) still give the exact smallest eigenvalue.
4. The preset rejects a position stride with the lanczos solver, and zero iterations, in one line.

Run: .venv/bin/pytest tests/test_split_lanczos.py -q   (about 5 s)
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_splitting import _tiny_model  # the float64 tiny net of the splitting tests (BNs far from identity)

from kws import splitting
from kws.errors import KwsError
from kws.models import DSCNN, ArchSpec
from kws.splitting import capture
from kws.splitting import lanczos as split_lanczos


@pytest.fixture(scope="module")
def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [
        (torch.randn(n, 12, 6, generator=gen, dtype=torch.float64), torch.randint(0, 12, (n,), generator=gen))
        for n in (8, 5)
    ]


def _products(model: DSCNN, batches, mode: str, v: dict) -> dict:
    """S v through the matrix-free operator: the same capture as lanczos_eigs, one product per layer."""
    units = capture.units_of(model)
    store, handles = capture.capture_hooks(model, units, need_dw=mode == "exact")
    ops = {u.name: [] for u in units}
    try:
        for x, y in batches:
            store.clear()
            loss = torch.nn.functional.cross_entropy(model(x), y, reduction="sum")
            keys = [k for k in store if k.endswith(".h") or k.endswith(".u")]
            grads = dict(zip(keys, torch.autograd.grad(loss, [store[k] for k in keys]), strict=True))
            for u in units:
                ops[u.name].append(
                    split_lanczos._layer_operator(u, store, grads, mode, model.spec.activation, 3.0, torch.float64)
                )
    finally:
        for h in handles:
            h.remove()
    n = sum(len(b[1]) for b in batches)
    with torch.no_grad():
        return {u.name: split_lanczos._apply(u, ops[u.name], v[u.name]) / n for u in units}


@pytest.mark.parametrize("activation", ["silu", "relu"])
@pytest.mark.parametrize("mode", ["exact", "own"])
def test_matrix_free_product_equals_formed_matrices(batches, activation, mode):
    model = _tiny_model(activation)
    mats = splitting.splitting_matrices(model, batches, mode=mode)
    gen = torch.Generator().manual_seed(2)
    v = {k: torch.randn(s.shape[0], s.shape[1], generator=gen, dtype=torch.float64) for k, s in mats.items()}
    got = _products(model, batches, mode, v)
    for name, s in mats.items():
        want = torch.einsum("cde,ce->cd", s, v[name])
        assert torch.allclose(got[name], want, atol=1e-12 * want.abs().max().item(), rtol=0), name
    if mode == "exact":  # S_dw is in the product: the own-only product differs on the non-final pointwise layer
        own = _products(model, batches, "own", v)
        assert not torch.allclose(own["blocks.0.pw"], got["blocks.0.pw"], rtol=1e-3)


def test_full_krylov_space_gives_the_eigh_eigenpairs(batches):
    model = _tiny_model("silu")
    mats = splitting.splitting_matrices(model, batches, mode="exact")
    eigs = split_lanczos.lanczos_eigs(model, batches, mode="exact", iters=100)
    for name, s in mats.items():
        vals, vecs = np.linalg.eigh(s.numpy())
        lam, v = eigs[name]
        np.testing.assert_allclose(lam.numpy(), vals[:, 0], atol=1e-12 * np.abs(vals).max())
        np.testing.assert_allclose(np.abs((v.numpy() * vecs[:, :, 0]).sum(1)), 1.0, atol=1e-8)


def test_ritz_value_bounds_lambda_min_and_converges():
    gen = torch.Generator().manual_seed(3)
    c, d = 6, 60
    q, _ = torch.linalg.qr(torch.randn(c, d, d, generator=gen, dtype=torch.float64))
    spectrum = torch.linspace(-1.0, 4.0, d, dtype=torch.float64).repeat(c, 1)
    spectrum[:, 0] = -2.0  # a gap below the rest
    mats = q @ torch.diag_embed(spectrum) @ q.transpose(1, 2)

    def matvec(v):
        return torch.einsum("cde,ce->cd", mats, v)

    errors = []
    for k in (4, 12, 30):
        lam, v = split_lanczos.lanczos_min(matvec, c, d, k, torch.Generator().manual_seed(0))
        assert (lam >= -2.0 - 1e-12).all()  # a Ritz value is a Rayleigh quotient: never below lambda_min
        errors.append((lam + 2.0).max().item())
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-8
    resid = matvec(v) - lam[:, None] * v
    assert resid.norm(dim=1).max().item() < 1e-6


def test_start_vector_is_used_and_never_lost():
    gen = torch.Generator().manual_seed(7)
    c, d = 4, 30
    a = torch.randn(c, d, d, generator=gen, dtype=torch.float64)
    mats = a + a.transpose(1, 2)
    vals, vecs = torch.linalg.eigh(mats)

    def matvec(v):
        return torch.einsum("cde,ce->cd", mats, v)

    lam, _ = split_lanczos.lanczos_min(matvec, c, d, 1, gen, start=vecs[:, :, 0])  # the answer: one step suffices
    np.testing.assert_allclose(lam.numpy(), vals[:, 0].numpy(), atol=1e-9)
    guess = vecs[:, :, 0] + 0.3 * vecs[:, :, 1]
    rayleigh = (guess * matvec(guess)).sum(1) / (guess * guess).sum(1)
    lam, _ = split_lanczos.lanczos_min(matvec, c, d, 3, gen, start=guess)
    assert (lam <= rayleigh + 1e-12).all() and (lam >= vals[:, 0] - 1e-12).all()


def test_low_rank_operator_closes_early_and_stays_exact():
    gen = torch.Generator().manual_seed(4)
    c, d, rank = 3, 10, 3
    f = torch.randn(c, d, rank, generator=gen, dtype=torch.float64)
    mats = f @ torch.diag(torch.tensor([-1.5, 0.5, 2.0], dtype=torch.float64)) @ f.transpose(1, 2)
    lam, v = split_lanczos.lanczos_min(lambda x: torch.einsum("cde,ce->cd", mats, x), c, d, d, gen)
    np.testing.assert_allclose(lam.numpy(), np.linalg.eigvalsh(mats.numpy())[:, 0], atol=1e-10)
    np.testing.assert_allclose(v.norm(dim=1).numpy(), 1.0, atol=1e-12)


def test_bad_solver_settings_are_one_line_errors():
    with pytest.raises(KwsError, match="position stride to 1"):
        replace(splitting.FAST, solver="lanczos")
    with pytest.raises(KwsError, match="not one of"):
        replace(splitting.FAST, solver="power")
    with pytest.raises(KwsError, match="iterations must be >= 1"):
        replace(splitting.FAST, position_stride=1, solver="lanczos", lanczos_iters=0)


def test_pass_eigs_lanczos_chooses_the_dense_units():
    """Through the preset API (what kws grow calls): at k >= D the lanczos pass picks exactly the dense pass's units."""
    from kws.splitting import Budget, select_splits

    spec = ArchSpec(conv1_width=6, widths=(5, 7), strides=((2, 2), (1, 1)), input_shape=(49, 10), activation="relu")
    torch.manual_seed(5)
    model = DSCNN(spec).double().eval()
    gen = torch.Generator().manual_seed(6)
    batches = [(torch.randn(16, 49, 10, generator=gen, dtype=torch.float64), torch.randint(0, 12, (16,))) for _ in "ab"]
    dense = replace(splitting.FAST, position_stride=1, dtype="float64")
    lanczos = replace(dense, solver="lanczos", lanczos_iters=64)
    chosen = []
    for cfg in (dense, lanczos):
        eigs = splitting.pass_eigs(model, batches, cfg)
        sel = select_splits(model.spec, eigs, Budget(), eps=1e-2, growth_cap=0.5)
        chosen.append({(c.layer, c.unit) for c in sel.chosen})
    assert chosen[0] and chosen[0] == chosen[1]


def test_bfloat16_products_keep_the_eigenvalues_and_the_choice():
    """The bfloat16 products (used on AMX CPUs) move lambda_min by well under a percent of the spread of the
    spectrum and keep the float32 pass's choice of units; float64 passes never use them."""
    from kws.splitting import Budget, select_splits

    spec = ArchSpec(conv1_width=24, widths=(32, 32), strides=((2, 2), (1, 1)), input_shape=(49, 10), activation="relu")
    torch.manual_seed(8)
    model = DSCNN(spec).eval()
    gen = torch.Generator().manual_seed(9)
    batches = [(torch.randn(16, 49, 10, generator=gen), torch.randint(0, 12, (16,), generator=gen)) for _ in "ab"]
    eigs = {
        mm: split_lanczos.lanczos_eigs(model, batches, iters=40, matmul_dtype=mm)
        for mm in (torch.float32, torch.bfloat16)
    }
    chosen = []
    for e in eigs.values():
        sel = select_splits(model.spec, e, Budget(), eps=1e-2, growth_cap=0.5)
        chosen.append({(c.layer, c.unit) for c in sel.chosen})
    for name, (lam, _) in eigs[torch.float32].items():
        spread = (lam.max() - lam.min()).item()
        assert (eigs[torch.bfloat16][name][0] - lam).abs().max().item() < 1e-2 * spread, name
    assert len(chosen[0] & chosen[1]) >= 0.9 * len(chosen[0])
    assert split_lanczos.fast_matmul_dtype(torch.device("cuda")) == torch.float32


@pytest.mark.parametrize(
    "cpuinfo,want",
    [
        ("flags\t\t: fpu sse2 avx2 fma\n", torch.float32),  # AMD EPYC / AVX2 only
        ("flags\t\t: fpu avx512f avx512_bf16 amx_tile amx_int8\n", torch.float32),  # AMX without its bf16 unit
        ("flags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n", torch.bfloat16),  # Sapphire Rapids
    ],
)
def test_auto_product_dtype_follows_the_cpu_flags(monkeypatch, cpuinfo, want):
    """The CPU-dependent choice is checked on every CPU: "auto" reads /proc/cpuinfo, so each machine's answer is
    tested by feeding it the other machines' flags."""
    import builtins
    import io

    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        return io.StringIO(cpuinfo) if str(path) == "/proc/cpuinfo" else real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert split_lanczos.fast_matmul_dtype(torch.device("cpu")) == want
