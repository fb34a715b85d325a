"""An AWD-LSTM encoder outside its model: written to a file with its vocabulary and sizes,
read back, re-indexed for a new vocabulary, and taken from a fitted language model or a
file to start another model (ULMFiT's transfer step)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sklearn.utils.validation import check_is_fitted

from deepfit.files import save_torch
from text.awd_lstm import AWD_LSTM, AWDLSTMConfig

__all__ = [
    "CLAS_DROPS",
    "CLAS_PS",
    "FORMAT",
    "LM_DROPS",
    "LM_OUTPUT_P",
    "EncoderFileMixin",
    "EncoderSource",
    "encoder_source",
    "load_encoder",
    "match_embeddings",
    "new_encoder",
    "read_encoder",
    "save_encoder",
]

FORMAT = "deepfit.text.encoder/1"
# Dropouts of the language model and of the classifier's encoder (fastai's AWD-LSTM
# configs); ``drop_mult`` scales them all.
LM_DROPS = {"input_p": 0.25, "hidden_p": 0.15, "embed_p": 0.02, "weight_p": 0.2}
LM_OUTPUT_P = 0.1
CLAS_DROPS = {"input_p": 0.4, "hidden_p": 0.3, "embed_p": 0.05, "weight_p": 0.5}
CLAS_PS = (0.4, 0.1)


@dataclass
class EncoderSource:
    """A starting encoder: its weights, vocabulary, sizes, level and direction."""

    state: dict[str, torch.Tensor]
    itos: list[str]
    config: AWDLSTMConfig
    level: str
    backwards: bool


def new_encoder(
    vocab_size: int, config: AWDLSTMConfig, drops: dict[str, float], mult: float
) -> AWD_LSTM:
    """An encoder of ``config``'s sizes with ``drops`` scaled by ``mult``."""
    return AWD_LSTM.from_config(
        vocab_size, config, pad_idx=1, **{k: v * mult for k, v in drops.items()}
    )


def save_encoder(
    path: str | Path,
    encoder: AWD_LSTM,
    itos: list[str],
    level: str,
    backwards: bool = False,
) -> None:
    """Write ``encoder``'s weights, sizes and vocabulary to ``path`` (a torch file of
    tensors, strings and numbers only, read back with ``weights_only=True``)."""
    state = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
    payload = {
        "format": FORMAT,
        "itos": list(itos),
        "level": level,
        "backwards": bool(backwards),
        "config": encoder.config.to_dict(),
        "state": state,
    }
    save_torch(payload, path, "the encoder")


def read_encoder(path: str | Path) -> EncoderSource:
    """The encoder written at ``path`` by ``save_encoder``; a clear error naming the
    file for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no encoder file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated file, another format: say which file
        raise ValueError(
            f"{path} is not an encoder written by save_encoder ({err.__class__.__name__})"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not an encoder written by save_encoder")
    missing = [k for k in ("itos", "level", "config", "state") if k not in payload]
    state = payload.get("state")
    if not missing and (
        not isinstance(state, dict) or "encoder_dp.emb.weight" not in state
    ):
        missing = ["state['encoder_dp.emb.weight'] (the weights)"]
    if missing:
        raise ValueError(
            f"{path} is tagged as an encoder file but has no {', '.join(missing)}; "
            "write it again with save_encoder"
        )
    n_emb = payload["state"]["encoder_dp.emb.weight"].shape[0]
    if n_emb != len(payload["itos"]):
        raise ValueError(
            f"{path}: the embedding has {n_emb} rows but the vocabulary "
            f"{len(payload['itos'])} tokens"
        )
    return EncoderSource(
        payload["state"],
        list(payload["itos"]),
        AWDLSTMConfig.from_dict(payload["config"]),
        payload["level"],
        bool(payload.get("backwards", False)),  # older files read forwards
    )


def encoder_source(language_model: Any) -> EncoderSource | None:
    """The starting encoder of ``language_model``: a fitted
    :class:`text.LanguageModel` (bare or in a ``FrozenEstimator``), a path written by
    ``save_encoder``, or ``None``."""
    if language_model is None:
        return None
    if isinstance(language_model, (str, Path)):
        return read_encoder(language_model)
    from sklearn.frozen import FrozenEstimator

    if isinstance(language_model, FrozenEstimator):
        language_model = language_model.estimator
    if not hasattr(language_model, "module_"):
        raise ValueError(
            f"language_model is a {type(language_model).__name__} that is not fitted. "
            "clone() (cross-validation, grid search) drops a fitted model's state: "
            "pass sklearn.frozen.FrozenEstimator(lm), or a file from lm.save_encoder"
        )
    enc = language_model.module_.encoder
    return EncoderSource(
        {k: v.detach().cpu().clone() for k, v in enc.state_dict().items()},
        list(language_model.vocab_.itos_),
        enc.config,
        language_model.level_,
        bool(language_model.backwards_),
    )


def _direction(backwards: bool) -> str:
    return "backwards" if backwards else "forwards"


def load_encoder(
    encoder: AWD_LSTM,
    source: EncoderSource,
    itos: list[str],
    path: Any,
    backwards: bool,
) -> None:
    """Load ``source``'s weights into ``encoder``, whose vocabulary ``itos``, direction
    and sizes must be the same (a clear error naming the difference otherwise)."""
    if list(source.itos) != list(itos):
        theirs = source.itos
        if len(theirs) != len(itos):
            detail = f"{len(theirs)} tokens in the file, {len(itos)} here"
        else:
            i = next(
                i for i, (a, b) in enumerate(zip(theirs, itos, strict=True)) if a != b
            )
            detail = f"first difference at id {i}: {theirs[i]!r} in the file, {itos[i]!r} here"
        raise ValueError(
            f"vocabulary mismatch loading the encoder from {path}: {detail}. An encoder "
            "can only be loaded into a model with the same vocabulary (to start a new "
            "model from it, pass the file as TextClassifier(language_model=path))"
        )
    if source.backwards != backwards:
        raise ValueError(
            f"the encoder in {path} reads texts {_direction(source.backwards)}, "
            f"this model {_direction(backwards)}"
        )
    sizes = ("emb_size", "hidden_size", "n_layers")
    theirs = {k: getattr(source.config, k) for k in sizes}
    ours = {k: getattr(encoder.config, k) for k in sizes}
    if theirs != ours:
        raise ValueError(f"encoder sizes differ: {theirs} in {path}, {ours} here")
    encoder.load_state_dict(source.state)


def match_embeddings(
    state: dict[str, torch.Tensor], old_itos: list[str], new_itos: list[str]
) -> dict[str, torch.Tensor]:
    """The encoder state re-indexed for a new vocabulary: tokens known to the old one keep
    their vectors, new tokens start at the mean vector (ULMFiT / fastai)."""
    old = state["encoder_dp.emb.weight"]
    mean = old.mean(0)
    new = mean.repeat(len(new_itos), 1)
    stoi = {s: i for i, s in enumerate(old_itos)}
    hits = [(i, stoi[s]) for i, s in enumerate(new_itos) if s in stoi]
    if hits:
        dst, src = (torch.tensor(v) for v in zip(*hits, strict=True))
        new[dst] = old[src]
    out = dict(state)
    out["encoder_dp.emb.weight"] = new
    return out


class EncoderFileMixin:
    """``save_encoder`` / ``load_encoder`` for a fitted text estimator whose
    ``module_.encoder`` is its AWD-LSTM (the language model and the classifier)."""

    def save_encoder(self, path: str | Path) -> None:
        """Write the encoder's weights, sizes and vocabulary to ``path`` (a torch file)
        for ``TextClassifier(language_model=path)`` or :meth:`load_encoder`."""
        check_is_fitted(self)
        save_encoder(
            path, self.module_.encoder, self.vocab_.itos_, self.level_, self.backwards_
        )

    def load_encoder(self, path: str | Path) -> Any:
        """Replace the encoder's weights with those saved at ``path``; the vocabulary
        must be this model's (a clear error otherwise)."""
        check_is_fitted(self)
        source = read_encoder(path)
        load_encoder(
            self.module_.encoder, source, self.vocab_.itos_, path, self.backwards_
        )
        return self
