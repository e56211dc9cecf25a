"""Text embeddings from the language model: the mean of the final (normalised) hidden states over a
text's tokens, scaled to unit length, so a dot product is a cosine similarity.

Texts are sorted by length and cut into batches of at most `batch_tokens` padded tokens, so short
texts are not padded to the longest one; padding goes on the right, where a causal model's real
tokens never see it, and is left out of the mean.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from roost.model.llama import Llama


def length_batches(lengths: Sequence[int], batch_tokens: int) -> Iterator[list[int]]:
    """Indices of texts, shortest first, grouped so each group's rows × longest row ≤ batch_tokens
    (a text longer than that goes alone)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * lengths[i] > batch_tokens:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


@torch.inference_mode()
def embed_batch(model: Llama, token_lists: Sequence[Sequence[int]], pad_id: int) -> np.ndarray:
    """Unit-length embeddings (N, D) float32 of one batch of token lists (each non-empty)."""
    device = model.tok_embeddings.weight.device
    T = max(len(t) for t in token_lists)
    tokens_NT = torch.full((len(token_lists), T), pad_id, dtype=torch.long)
    for row, ids in enumerate(token_lists):
        tokens_NT[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    lengths_N = torch.tensor([len(t) for t in token_lists], device=device)
    hidden_NTD = model.hidden_states(tokens_NT.to(device)).float()
    mask_NT1 = (torch.arange(T, device=device)[None, :] < lengths_N[:, None]).unsqueeze(-1)
    mean_ND = (hidden_NTD * mask_NT1).sum(dim=1) / lengths_N[:, None]
    return torch.nn.functional.normalize(mean_ND, dim=-1).cpu().numpy()
