"""Hugging Face export: transformers loads it, its logits equal roost's within 1e-4 (fp32), greedy
generation picks the same tokens, its tokenizer encodes the same ids, and it imports back."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from roost.export.hf import export_hf, hf_name, import_hf, load_hf, roost_name
from roost.tokenizer import END_OF_POST, END_OF_TURN, format_chat, load_tokenizer, special_id
from roost.train.checkpoint import load_model
from roost.train.trainer import train
from roost.workspace import Workspace
from tests.train.conftest import tiny

transformers = pytest.importorskip("transformers")


def greedy(model: torch.nn.Module, prompt: list[int], steps: int) -> list[int]:
    """Plain greedy decoding: the whole sequence through the model for each new token."""
    tokens = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            tokens.append(int(model(torch.tensor([tokens]))[0, -1].argmax()))
    return tokens[len(prompt) :]


@pytest.mark.parametrize("tied", [False, True])
def test_transformers_loads_the_export_and_agrees(train_ws: Workspace, tied: bool) -> None:
    train(train_ws, tiny(max_steps=6, lr=3e-3, eval_every=0, model={"tie_embeddings": tied}), "run")
    out = export_hf(train_ws.runs_dir / "run", train_ws.export_dir / "run")
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    ours, config = load_model(train_ws.runs_dir / "run")
    theirs = transformers.LlamaForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert theirs.config.tie_word_embeddings == tied == config.tie_embeddings

    tokenizer = load_tokenizer(train_ws.tokenizer_dir)
    eot = special_id(tokenizer, END_OF_POST)
    prompt = [eot, *tokenizer.encode("the cat loves", add_special_tokens=False).ids]
    tokens = torch.tensor([prompt, prompt[::-1]])
    with torch.no_grad():
        difference = (ours(tokens) - theirs(input_ids=tokens).logits).abs().max().item()
    assert difference < 1e-4
    print(f"max |logit difference| roost vs transformers: {difference:.2e}")

    # 24 new tokens each, past any end-of-post, so the comparison is never a short one.
    theirs.generation_config.eos_token_id = None
    ids = torch.tensor([prompt])
    generated = theirs.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=24)
    assert greedy(ours, prompt, 24) == generated[0, len(prompt) :].tolist()


def test_the_exported_tokenizer_is_the_same_tokenizer(train_ws: Workspace) -> None:
    train(train_ws, tiny(max_steps=1, eval_every=0), "run")
    out = export_hf(train_ws.runs_dir / "run", train_ws.export_dir / "run")
    theirs = transformers.AutoTokenizer.from_pretrained(out)
    ours = load_tokenizer(train_ws.tokenizer_dir)
    for text in ("grandma wrote about the rain 🙂 #weekend", "@user see http"):
        assert (
            theirs.encode(text, add_special_tokens=False) == ours.encode(text, add_special_tokens=False).ids
        )
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert theirs.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == format_chat(
        messages
    )
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [special_id(ours, END_OF_POST), special_id(ours, END_OF_TURN)]


def test_import_round_trip_and_tune_from_it(train_ws: Workspace) -> None:
    train(train_ws, tiny(max_steps=3, eval_every=0), "run")
    out = export_hf(train_ws.runs_dir / "run", train_ws.export_dir / "run")
    imported = import_hf(out, train_ws.runs_dir / "imported")
    original, _ = load_model(train_ws.runs_dir / "run")
    back, _ = load_model(imported)
    for (name, a), (_, b) in zip(original.state_dict().items(), back.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert load_hf(out)[1] == load_model(imported)[1]
    with pytest.raises(FileExistsError):
        import_hf(out, train_ws.runs_dir / "imported")
    result = train(train_ws, tiny(max_steps=2, eval_every=0, init_from="imported"), "continued")
    assert result.step == 2


def test_name_map_round_trips() -> None:
    for name in (
        "layers.3.attention.wq.weight",
        "layers.0.feed_forward.w2.weight",
        "layers.1.ffn_norm.weight",
    ):
        assert roost_name(hf_name(name)) == name
    assert hf_name("tok_embeddings.weight") == "model.embed_tokens.weight"
    assert hf_name("output.weight") == "lm_head.weight"


def test_a_folder_that_is_not_llama_is_refused(tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="not a Llama checkpoint"):
        load_hf(tmp_path)
    shutil.rmtree(tmp_path)
