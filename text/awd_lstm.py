"""AWD-LSTM (Merity, Keskar & Socher 2017, "Regularizing and Optimizing LSTM Language
Models") and the heads ULMFiT puts on it (Howard & Ruder 2018): a tied language-model
decoder and a concat-pooling classifier; and one language model per class read through
Bayes' rule. Only ``nn.Module``s and splitters live here."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from deepfit.layers import LinBnDrop
from deepfit.persist import persistable

__all__ = [
    "AWD_LSTM",
    "AWDLSTMConfig",
    "ClassConditionalLM",
    "EmbeddingDropout",
    "LMModel",
    "LMOutput",
    "LinearDecoder",
    "PoolingClassifier",
    "RNNDropout",
    "TextClassifierModel",
    "WeightDropout",
    "classifier_splitter",
    "lm_splitter",
]

Hidden = list[tuple[torch.Tensor, torch.Tensor]]


@persistable
@dataclass(frozen=True)
class AWDLSTMConfig:
    """The sizes of an :class:`AWD_LSTM` (what an encoder file records, and what a
    language model and the classifiers started from it share). The paper's 400/1150/3
    are for GPUs; the defaults train at a useful speed on a CPU."""

    emb_size: int = 200
    hidden_size: int = 500
    n_layers: int = 2
    identity_init: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AWDLSTMConfig:
        """From a dict (say an encoder file's); keys it does not know are ignored."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class RNNDropout(nn.Module):
    """Locked (variational) dropout: one mask per sequence, shared across time steps
    (Gal & Ghahramani 2016), so a dropped unit stays dropped for the whole sequence.

    Shape:
        - Input: ``(B, T, C)``
        - Output: ``(B, T, C)``
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - self.p)
        return x * mask / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class EmbeddingDropout(nn.Module):
    """Dropout of whole words: rows of the embedding matrix are zeroed (and the rest
    scaled by ``1 / (1 - p)``), so every occurrence of a dropped word in the batch
    vanishes (AWD-LSTM sec. 4.3).

    Shape:
        - Input: ``(B, T)`` token ids
        - Output: ``(B, T, emb_size)``
    """

    def __init__(self, emb: nn.Embedding, p: float = 0.1) -> None:
        super().__init__()
        self.emb, self.p = emb, p

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        weight = self.emb.weight
        if self.training and self.p > 0:
            mask = weight.new_empty(weight.size(0), 1).bernoulli_(1 - self.p)
            weight = weight * mask / (1 - self.p)
        return F.embedding(words, weight, self.emb.padding_idx)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class WeightDropout(nn.Module):
    """DropConnect on an ``nn.LSTM``'s hidden-to-hidden weights (AWD-LSTM sec. 2).

    The wrapped LSTM keeps its own (raw) weights as parameters; in training the dropped
    weights are passed in with :func:`torch.func.functional_call`, so the LSTM still runs
    as one fused ``nn.LSTM`` call (no Python loop over time steps) and the mask is the
    same at every step of the sequence. In eval mode the raw weights are used as they
    are, so the output is deterministic.
    """

    def __init__(self, module: nn.LSTM, p: float = 0.5) -> None:
        super().__init__()
        self.module, self.p = module, p
        self.names = [
            n for n, _ in module.named_parameters() if n.startswith("weight_hh")
        ]

    def forward(self, x: torch.Tensor, hidden: tuple | None = None):
        if not self.training or self.p == 0:
            return self.module(x, hidden)
        params = {
            n: F.dropout(getattr(self.module, n), self.p, training=True)
            for n in self.names
        }
        return functional_call(self.module, params, (x, hidden))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class AWD_LSTM(nn.Module):
    """The AWD-LSTM encoder: embedding with word dropout, locked dropout on its output,
    ``n_layers`` single-layer LSTMs with weight-dropped hidden-to-hidden matrices and locked
    dropout between them. The last layer has ``emb_size`` units so a decoder can share the
    embedding matrix.

    Parameters
    ----------
    vocab_size : int
    emb_size : int, default=400
    hidden_size : int, default=1150
    n_layers : int, default=3
    pad_idx : int, default=1
    hidden_p : float, default=0.3
        Locked dropout between LSTM layers.
    input_p : float, default=0.4
        Locked dropout on the embedding output.
    embed_p : float, default=0.05
        Word (embedding-row) dropout.
    weight_p : float, default=0.5
        DropConnect on the hidden-to-hidden weights.
    identity_init : bool, default=False
        Start every gate's hidden-to-hidden block as the identity matrix (Le et al. 2015,
        "IRNN") instead of PyTorch's uniform initialisation.

    Shape:
        - Input: ``(B, T)`` token ids, and optionally a hidden state
        - Output: ``(raw_outputs, outputs, hidden)``: per layer, the LSTM outputs
          ``(B, T, C_l)`` before and after dropout, and the final ``(h, c)`` per layer.
    """

    def __init__(
        self,
        vocab_size: int,
        emb_size: int = 400,
        hidden_size: int = 1150,
        n_layers: int = 3,
        pad_idx: int = 1,
        hidden_p: float = 0.3,
        input_p: float = 0.4,
        embed_p: float = 0.05,
        weight_p: float = 0.5,
        identity_init: bool = False,
    ) -> None:
        super().__init__()
        self.vocab_size, self.emb_size, self.hidden_size = (
            vocab_size,
            emb_size,
            hidden_size,
        )
        self.n_layers, self.pad_idx, self.identity_init = (
            n_layers,
            pad_idx,
            identity_init,
        )
        # The embedding is registered once, inside its dropout wrapper; ``encoder`` is a
        # read-only alias (one state-dict key, one parameter group entry).
        self.encoder_dp = EmbeddingDropout(
            nn.Embedding(vocab_size, emb_size, padding_idx=pad_idx), embed_p
        )
        sizes = [emb_size] + [hidden_size] * (n_layers - 1) + [emb_size]
        self.rnns = nn.ModuleList(
            WeightDropout(nn.LSTM(sizes[i], sizes[i + 1], batch_first=True), weight_p)
            for i in range(n_layers)
        )
        self.input_dp = RNNDropout(input_p)
        self.hidden_dps = nn.ModuleList(RNNDropout(hidden_p) for _ in range(n_layers))
        self.reset_parameters()

    @classmethod
    def from_config(
        cls,
        vocab_size: int,
        config: AWDLSTMConfig,
        pad_idx: int = 1,
        **dropouts: float,
    ) -> AWD_LSTM:
        """An encoder of ``config``'s sizes; ``dropouts`` are ``hidden_p``, ``input_p``,
        ``embed_p``, ``weight_p``."""
        return cls(vocab_size, pad_idx=pad_idx, **config.to_dict(), **dropouts)

    @property
    def config(self) -> AWDLSTMConfig:
        return AWDLSTMConfig(
            self.emb_size, self.hidden_size, self.n_layers, self.identity_init
        )

    @property
    def encoder(self) -> nn.Embedding:
        return self.encoder_dp.emb

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        with torch.no_grad():
            self.encoder.weight[self.pad_idx].zero_()
        for rnn in self.rnns:
            rnn.module.reset_parameters()
            if self.identity_init:
                w = (
                    rnn.module.weight_hh_l0
                )  # (4H, H): input, forget, cell, output gates
                h = w.size(1)
                with torch.no_grad():
                    w.copy_(torch.eye(h).repeat(4, 1))

    def forward(
        self, tokens: torch.Tensor, hidden: Hidden | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], Hidden]:
        x = self.input_dp(self.encoder_dp(tokens))  # (B, T, E)
        raw_outputs, outputs, new_hidden = [], [], []
        for i, (rnn, dp) in enumerate(zip(self.rnns, self.hidden_dps, strict=True)):
            h0 = None if hidden is None else hidden[i]
            raw, state = rnn(x, h0)  # (B, T, C_i)
            new_hidden.append(state)
            raw_outputs.append(raw)
            x = dp(raw) if i < self.n_layers - 1 else raw
            outputs.append(x)
        return raw_outputs, outputs, new_hidden


class LinearDecoder(nn.Module):
    """Locked dropout then a linear layer to vocabulary logits, its weight tied to the
    encoder's embedding (Press & Wolf 2017; Inan et al. 2017).

    Shape:
        - Input: ``(B, T, emb_size)``
        - Output: ``(B, T, vocab_size)``
    """

    def __init__(self, embedding: nn.Embedding, output_p: float = 0.1) -> None:
        super().__init__()
        n_out, n_in = embedding.weight.shape
        self.output_dp = RNNDropout(output_p)
        self.decoder = nn.Linear(n_in, n_out)
        self.decoder.weight = embedding.weight  # tied: one Parameter, two uses
        nn.init.zeros_(self.decoder.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.output_dp(x))


class LMOutput(NamedTuple):
    """What :class:`LMModel` returns: the logits, and the last layer's raw and dropped
    outputs that the AR/TAR penalties read in training (AWD-LSTM sec. 4.6)."""

    logits: torch.Tensor  # (B, T, V)
    raw: torch.Tensor  # (B, T, E)
    dropped: torch.Tensor  # (B, T, E)


class LMModel(nn.Module):
    """Encoder plus tied decoder, carrying the hidden state from one batch to the next
    (detached, so gradients stop at the window boundary). ``reset()`` forgets it; a batch
    of another size forgets it too.

    Shape:
        - Input: ``(B, T)``
        - Output: :class:`LMOutput`, logits ``(B, T, vocab_size)`` first
    """

    def __init__(self, encoder: AWD_LSTM, output_p: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = LinearDecoder(encoder.encoder, output_p)
        # The carried state is per thread: predictions from several threads at once
        # each carry their own stream (one shared state mixed them up).
        self._carried = threading.local()

    @property
    def hidden(self) -> Hidden | None:
        """The hidden state carried to the next call (this thread's)."""
        return getattr(self._carried, "hidden", None)

    @hidden.setter
    def hidden(self, value: Hidden | None) -> None:
        self._carried.hidden = value

    def reset(self) -> None:
        self.hidden = None

    def forward(self, tokens: torch.Tensor) -> LMOutput:
        hidden = self.hidden
        if hidden is not None and hidden[0][0].size(1) != tokens.size(0):
            hidden = None
        raw, out, new_hidden = self.encoder(tokens, hidden)
        self.hidden = [(h.detach(), c.detach()) for h, c in new_hidden]
        return LMOutput(self.decoder(out[-1]), raw[-1], out[-1])

    def __getstate__(self):
        # The carried state is transient: never pickle (or deep-copy) it.
        state = dict(self.__dict__)
        state.pop("_carried", None)
        state.pop("hidden", None)  # files written before the state was per thread
        return state

    def __setstate__(self, state):
        state = dict(state)
        state.pop("hidden", None)
        super().__setstate__(state)
        self._carried = threading.local()


def masked_concat_pool(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``[last, max, mean]`` of ``outputs`` ``(B, T, C)`` over each row's first
    ``lengths`` positions -> ``(B, 3C)`` (ULMFiT's concat pooling, padding ignored)."""
    b, t, _ = outputs.shape
    mask = torch.arange(t, device=outputs.device)[None, :] < lengths[:, None]  # (B, T)
    last = outputs[torch.arange(b, device=outputs.device), lengths - 1]  # (B, C)
    maxed = outputs.masked_fill(~mask[..., None], float("-inf")).max(1).values
    mean = (outputs * mask[..., None]).sum(1) / lengths[:, None].to(outputs.dtype)
    return torch.cat([last, maxed, mean], 1)


class PoolingClassifier(nn.Module):
    """Concat pooling then batchnorm-dropout-linear blocks (ReLU between them).

    Shape:
        - Input: encoder outputs ``(B, T, C)`` and lengths ``(B,)``
        - Output: ``(B, n_out)``
    """

    def __init__(
        self, n_in: int, n_out: int, lin_sizes: tuple[int, ...] = (50,), ps=(0.4, 0.1)
    ) -> None:
        super().__init__()
        sizes = [3 * n_in, *lin_sizes, n_out]
        if len(ps) != len(sizes) - 1:
            raise ValueError(f"{len(ps)} dropout rates for {len(sizes) - 1} layers")
        acts = [nn.ReLU() for _ in lin_sizes] + [None]
        self.layers = nn.Sequential(
            *(
                LinBnDrop(sizes[i], sizes[i + 1], bn=True, p=ps[i], act=acts[i])
                for i in range(len(sizes) - 1)
            )
        )

    def forward(self, outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.layers(masked_concat_pool(outputs, lengths))


class TextClassifierModel(nn.Module):
    """An AWD-LSTM encoder (fresh state for every batch) and a pooling classifier.

    Shape:
        - Input: ids ``(B, T)`` right-padded, lengths ``(B,)``
        - Output: ``(B, n_out)``
    """

    def __init__(self, encoder: AWD_LSTM, head: PoolingClassifier) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        _, outputs, _ = self.encoder(tokens)
        return self.head(outputs[-1], lengths)


class ClassConditionalLM(nn.Module):
    """One language model per class, read through Bayes' rule: the logits are
    ``scale * log p(text | class) + offset`` (a temperature and one offset per class,
    which absorb the class priors and the models' unequal fit; Yogatama et al. 2017,
    "Generative and discriminative text classification with recurrent neural networks").

    A text's log-likelihood sums the log-probability of each of its tokens after the
    first (``xxbos``) given those before it. The texts are read in windows of ``window``
    tokens with the hidden state carried across, so memory stays at ``B * window`` rows
    of vocabulary logits however long the texts are; padding comes after a text's last
    token, so it never changes what the model saw before it.

    Shape:
        - Input: ids ``(B, T)`` right-padded, lengths ``(B,)``
        - Output: ``(B, n_classes)``
    """

    def __init__(self, lms: Sequence[LMModel], window: int = 64) -> None:
        super().__init__()
        self.lms = nn.ModuleList(lms)
        self.window = window
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("offset", torch.zeros(len(self.lms)))

    def log_likelihoods(
        self, tokens: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """``log p(text | class)`` in nats, ``(B, n_classes)``."""
        b, t = tokens.shape
        out = tokens.new_zeros((b, len(self.lms)), dtype=torch.float32)
        if t < 2:
            return out
        x, target = tokens[:, :-1], tokens[:, 1:]  # predict token i + 1 from 0..i
        real = torch.arange(t - 1, device=tokens.device)[None] < (lengths - 1)[:, None]
        for k, lm in enumerate(self.lms):
            lm.reset()
            for i in range(0, t - 1, self.window):
                logits = lm(x[:, i : i + self.window]).logits
                w = logits.size(1)
                nll = F.cross_entropy(
                    logits.reshape(b * w, -1).float(),  # (B * W, V)
                    target[:, i : i + w].reshape(-1),
                    reduction="none",
                ).view(b, w)
                out[:, k] -= (nll * real[:, i : i + w]).sum(1)
            lm.reset()
        return out

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.scale * self.log_likelihoods(tokens, lengths) + self.offset

    def extra_repr(self) -> str:
        return f"n_classes={len(self.lms)}, window={self.window}"


def lm_splitter(model: LMModel) -> list[list[nn.Module]]:
    """One group per LSTM layer, then embedding + decoder (they share a weight)."""
    enc = model.encoder
    return [[rnn] for rnn in enc.rnns] + [[enc.encoder, model.decoder]]


def classifier_splitter(model: TextClassifierModel) -> list[list[nn.Module]]:
    """Embedding, each LSTM layer, the head: earliest first (for gradual unfreezing)."""
    enc = model.encoder
    return [[enc.encoder], *([rnn] for rnn in enc.rnns), [model.head]]
