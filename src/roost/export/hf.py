"""A run to and from Hugging Face's Llama layout: `config.json`, `model.safetensors`,
`generation_config.json` and the tokenizer files, a folder `transformers.LlamaForCausalLM` and
`AutoTokenizer` load as they are (and vLLM, llama.cpp's converter, ...).

roost's parameter names follow Meta's Llama code; the mapping to Hugging Face's is one table. Both
use the same rotary layout ("rotate half"), so no weight is permuted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from roost.model.config import ModelConfig
from roost.model.llama import Llama
from roost.tokenizer import END_OF_POST, END_OF_TURN, PAD, load_tokenizer, special_id
from roost.train.checkpoint import load_model, save_weights, step_dir
from roost.train.config import TrainConfig
from roost.train.run import RunDir

WEIGHTS = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")

# roost name piece → Hugging Face name piece, inside each layer and at the top level.
LAYER_NAMES = {
    "attention.wq": "self_attn.q_proj",
    "attention.wk": "self_attn.k_proj",
    "attention.wv": "self_attn.v_proj",
    "attention.wo": "self_attn.o_proj",
    "feed_forward.w1": "mlp.gate_proj",
    "feed_forward.w2": "mlp.down_proj",
    "feed_forward.w3": "mlp.up_proj",
    "attention_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
TOP_NAMES = {"tok_embeddings": "model.embed_tokens", "norm": "model.norm", "output": "lm_head"}


def hf_name(name: str) -> str:
    """'layers.3.attention.wq.weight' → 'model.layers.3.self_attn.q_proj.weight'."""
    if name.startswith("layers."):
        _, index, rest = name.split(".", 2)
        module, _, param = rest.rpartition(".")
        return f"model.layers.{index}.{LAYER_NAMES[module]}.{param}"
    module, _, param = name.rpartition(".")
    return f"{TOP_NAMES[module]}.{param}"


def roost_name(name: str) -> str:
    """The inverse of `hf_name`."""
    if name.startswith("model.layers."):
        _, _, index, rest = name.split(".", 3)
        module, _, param = rest.rpartition(".")
        return f"layers.{index}.{_invert(LAYER_NAMES)[module]}.{param}"
    module, _, param = name.rpartition(".")
    return f"{_invert(TOP_NAMES)[module]}.{param}"


def _invert(table: dict[str, str]) -> dict[str, str]:
    return {v: k for k, v in table.items()}


def hf_config(config: ModelConfig, *, eot_id: int, pad_id: int) -> dict:
    """config.json for transformers' LlamaConfig (4.x reads rope_theta, 5.x rope_parameters)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": config.vocab_size,
        "hidden_size": config.dim,
        "intermediate_size": config.hidden_dim,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": config.max_seq_len,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_theta},
        "rope_scaling": None,
        "tie_word_embeddings": config.tie_embeddings,
        "attention_bias": False,
        "mlp_bias": False,
        "attention_dropout": 0.0,
        "initializer_range": config.init_std,
        # Every post starts after an end-of-post in training, so it is also the sequence start.
        "bos_token_id": eot_id,
        "eos_token_id": eot_id,
        "pad_token_id": pad_id,
        "torch_dtype": "float32",
        "use_cache": True,
    }


def model_config_from_hf(config: dict) -> ModelConfig:
    if config.get("model_type") != "llama":
        raise ValueError(f"not a Llama checkpoint (model_type {config.get('model_type')!r})")
    unsupported = [k for k in ("attention_bias", "mlp_bias") if config.get(k)]
    if config.get("rope_scaling") or unsupported or config.get("hidden_act", "silu") != "silu":
        raise ValueError("roost's Llama has no biases, rope scaling or activations other than silu")
    theta = config.get("rope_theta") or (config.get("rope_parameters") or {}).get("rope_theta", 10_000.0)
    return ModelConfig(
        vocab_size=config["vocab_size"],
        dim=config["hidden_size"],
        n_layers=config["num_hidden_layers"],
        n_heads=config["num_attention_heads"],
        n_kv_heads=config.get("num_key_value_heads"),
        ffn_dim=config["intermediate_size"],
        max_seq_len=config.get("max_position_embeddings", 2048),
        rope_theta=float(theta),
        norm_eps=config.get("rms_norm_eps", 1e-5),
        tie_embeddings=bool(config.get("tie_word_embeddings", False)),
        init_std=config.get("initializer_range", 0.02),
    )


def export_hf(run_dir: Path, out_dir: Path, step: int | None = None) -> Path:
    """Write the run's latest (or given) checkpoint as a Hugging Face folder; returns it."""
    run = RunDir(Path(run_dir))
    model, config = load_model(run.path, step)
    tokenizer = load_tokenizer(run.tokenizer_dir)
    weights = {hf_name(k): v.contiguous() for k, v in model.state_dict().items()}
    if config.tie_embeddings:
        del weights["lm_head.weight"]  # one tensor; transformers re-ties it from the config
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(weights, tmp / WEIGHTS, metadata={"format": "pt"})
    eot, pad = special_id(tokenizer, END_OF_POST), special_id(tokenizer, PAD)
    _write_json(tmp / "config.json", hf_config(config, eot_id=eot, pad_id=pad))
    generation = {
        "bos_token_id": eot,
        "eos_token_id": [eot, special_id(tokenizer, END_OF_TURN)],
        "pad_token_id": pad,
    }
    _write_json(tmp / "generation_config.json", generation)
    for name in TOKENIZER_FILES:
        shutil.copy2(run.tokenizer_dir / name, tmp / name)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


def load_hf(directory: Path, device: str | torch.device = "cpu") -> tuple[Llama, ModelConfig]:
    """A Hugging Face Llama folder (roost's export or any compatible one) as roost's model."""
    directory = Path(directory)
    config = model_config_from_hf(json.loads((directory / "config.json").read_text(encoding="utf-8")))
    hf_weights = load_file(directory / WEIGHTS, device=str(device))
    state = {roost_name(k): v.float() for k, v in hf_weights.items()}
    if config.tie_embeddings:
        state.setdefault("output.weight", state["tok_embeddings.weight"])
    with torch.device("meta"):
        model = Llama(config)
    model.load_state_dict(state, assign=True, strict=True)
    if config.tie_embeddings:
        model.output.weight = model.tok_embeddings.weight
    model.init_rope()
    return model.to(device).eval(), config


def import_hf(directory: Path, run_dir: Path) -> Path:
    """Make a run from a Hugging Face folder: its config, tokenizer and a weights-only checkpoint
    at step 0, which `roost train --sft RUN`, `--set init_from=RUN`, evaluation and serving use."""
    model, config = load_hf(directory)
    run = RunDir(Path(run_dir))
    if run.exists():
        raise FileExistsError(f"run {run.path} already exists; choose another name")
    run.path.mkdir(parents=True)
    tokenizer_dir = run.tokenizer_dir
    tokenizer_dir.mkdir()
    for name in TOKENIZER_FILES:
        if (Path(directory) / name).exists():
            shutil.copy2(Path(directory) / name, tokenizer_dir / name)
    load_tokenizer(tokenizer_dir)  # fails clearly if the folder had no tokenizer.json
    save_weights(model, step_dir(run.checkpoints_dir, 0))
    # The whole shape as overrides, so the run's config rebuilds exactly this network.
    shape = {k: v for k, v in dataclasses.asdict(config).items() if v is not None}
    train = TrainConfig(preset="tiny", model=shape, seq_len=min(TrainConfig().seq_len, config.max_seq_len))
    run.write_config(train, config)
    return run.path


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
