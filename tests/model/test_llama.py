"""The network: parameter counts against the presets, shapes, grouped-query attention, causality,
and equivalence with transformers' LlamaForCausalLM under the documented name map."""

from __future__ import annotations

import pytest
import torch

from roost.model.config import PRESETS, ModelConfig, preset
from roost.model.llama import Llama

SMALL = ModelConfig(vocab_size=97, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=64, max_seq_len=32)


@pytest.mark.parametrize("name", list(PRESETS))
def test_param_count_matches_the_built_network(name: str) -> None:
    config = PRESETS[name]
    with torch.device("meta"):  # no memory, even for 405B
        model = Llama(config)
    assert sum(p.numel() for p in model.parameters()) == config.num_params()


def test_published_sizes() -> None:
    # Llama 3's published totals: 8.03B, 70.6B, 405.9B (with the 128,256-token vocabulary).
    assert round(PRESETS["8b"].num_params() / 1e9, 2) == 8.03
    assert round(PRESETS["70b"].num_params() / 1e9, 1) == 70.6
    assert round(PRESETS["405b"].num_params() / 1e9, 1) == 405.9
    assert 15e6 < PRESETS["20m"].num_params() < 25e6
    assert 100e6 < PRESETS["125m"].num_params() < 150e6


def test_flops_per_token_convention() -> None:
    config = PRESETS["125m"]
    seq = 2048
    base = 6 * config.matmul_params()
    attention = 12 * config.n_layers * seq * config.dim  # 3 × (2 × 2 × T × D) per layer
    assert config.flops_per_token(seq, "none") == base
    assert config.flops_per_token(seq) == base + attention
    assert config.flops_per_token(seq, "causal") == base + attention / 2


def test_bad_shapes_fail_with_the_reason() -> None:
    with pytest.raises(ValueError, match="4 heads do not divide width 66"):
        ModelConfig(dim=66, n_heads=4)
    with pytest.raises(ValueError, match="key/value heads do not divide 8 query heads"):
        ModelConfig(dim=64, n_heads=8, n_kv_heads=3)
    with pytest.raises(ValueError, match="unknown model preset"):
        preset("7b")


def test_shapes_and_grouped_query_attention() -> None:
    torch.manual_seed(0)
    model = Llama(SMALL)
    attention = model.layers[0].attention
    assert attention.wq.weight.shape == (4 * 8, 32)
    assert attention.wk.weight.shape == (2 * 8, 32)  # 2 key/value heads shared by 4 query heads
    tokens = torch.randint(0, SMALL.vocab_size, (3, 17))
    assert model(tokens).shape == (3, 17, SMALL.vocab_size)
    assert model.hidden_states(tokens).shape == (3, 17, SMALL.dim)


def test_attention_is_causal() -> None:
    torch.manual_seed(0)
    model = Llama(SMALL).eval()
    tokens = torch.randint(0, SMALL.vocab_size, (1, 20))
    changed = tokens.clone()
    changed[0, 12:] = (changed[0, 12:] + 1) % SMALL.vocab_size
    with torch.no_grad():
        a, b = model(tokens), model(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12], rtol=0, atol=0)
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_explicit_positions_equal_implicit_ones() -> None:
    torch.manual_seed(0)
    model = Llama(SMALL).eval()
    tokens = torch.randint(0, SMALL.vocab_size, (2, 9))
    positions = torch.arange(9).expand(2, 9)
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), model(tokens, positions))


def test_tied_embeddings_share_one_matrix() -> None:
    model = Llama(SMALL.replace(tie_embeddings=True))
    assert model.output.weight is model.tok_embeddings.weight
    assert sum(p.numel() for p in model.parameters()) == SMALL.replace(tie_embeddings=True).num_params()


def test_init_scales_residual_projections() -> None:
    torch.manual_seed(0)
    config = SMALL.replace(dim=256, n_layers=8, ffn_dim=512, n_heads=8)
    model = Llama(config)
    plain = model.layers[0].attention.wq.weight.std().item()
    residual = model.layers[0].attention.wo.weight.std().item()
    assert plain == pytest.approx(0.02, rel=0.05)
    assert residual == pytest.approx(0.02 / 4, rel=0.05)  # 0.02 / sqrt(2 × 8)


@pytest.mark.parametrize("tied", [False, True])
def test_matches_transformers_llama(tied: bool) -> None:
    transformers = pytest.importorskip("transformers")
    from roost.export.hf import hf_config, hf_name

    torch.manual_seed(0)
    config = SMALL.replace(tie_embeddings=tied, rope_theta=500_000.0)
    model = Llama(config).eval()
    hf = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**hf_config(config, eot_id=0, pad_id=1))
    ).eval()
    state = {hf_name(k): v for k, v in model.state_dict().items()}
    missing, unexpected = hf.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}
    tokens = torch.randint(0, config.vocab_size, (2, 24))
    with torch.no_grad():
        ours, theirs = model(tokens), hf(input_ids=tokens).logits
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
