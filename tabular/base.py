"""The base of the tabular estimators: their shared parameters, DataFrame -> batches, the
network, the prediction path and ``transform``; and their losses and metrics (weighted by
``sample_weight``)."""

from __future__ import annotations

import numbers
from functools import partial
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import TransformerMixin
from sklearn.utils import TransformerTags
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from deepfit import FitData, NeuralEstimator, SparseAdamW, TensorBatches, distributed
from deepfit.data import check_sample_weight, is_frame
from deepfit.params import Boolean, InstanceOf, Interval, Options, SequenceOf
from deepfit.stream import (
    RowSample,
    fit_columns,
    is_stream,
    open_dataset,
    read_frames,
    row_hash,
    split_batches,
    valid_share,
    write_parquet,
)
from tabular.model import TabularModel, quantile_edges, splitter
from tabular.preprocessing import (
    TabularPreprocessor,
    embedding_width,
    to_frame,
    unique_names,
)

__all__ = ["PARAMETERS_DOC", "PREDICT_BATCH", "TabularEstimator", "per_member"]

# The two estimators' shared parameters, in their numpydoc docstrings.
PARAMETERS_DOC = """
    layers : sequence of int, default=(200, 100)
        Widths of the hidden linear-batchnorm-ReLU-dropout blocks.
    dropout : float, default=0.1
        Dropout after each hidden block.
    embed_dropout : float, default=0.0
        Dropout on the concatenated embeddings.
    embedding_sizes : dict of column -> int, optional
        Embedding width per categorical column; the others get
        ``min(50, (c + 1) // 2)``, where ``c`` counts the unknown (and missing) codes.
    cat_features, cont_features : list, optional
        Force columns to be categorical or continuous (names for a DataFrame, indices for
        an array; an array is all continuous otherwise). Integer columns are continuous
        unless named in ``cat_features``.
    min_frequency : int, default=5
        Categories seen fewer times in training are treated as unknown (a surname or
        ticket seen once or twice is memorised rather than learned from). Likewise a
        two-valued continuous column (a flag, a date flag such as ``is_month_end``, a
        ``_na`` indicator) whose rarer value was seen fewer times is held at 0 (see
        :class:`TabularPreprocessor`).
    int_levels : int, default=200
        Integer columns with 2 to ``int_levels`` distinct values in training are *also*
        embedded as categoricals (``<col>_cat``), keeping their continuous value, so the
        network can learn a value per level besides the trend (an age or a count whose
        effect is not linear). 0 turns this off.
    unknown_rate : float, default=0.01
        Share of categorical codes replaced by the unknown code during training, so the
        unknown embedding is trained: an unseen category predicts like an average one.
    weight_decay : float, default=0.01
        Decoupled (AdamW) weight decay, on sparse embedding rows too (applied when a
        row next appears, see :class:`deepfit.SparseAdamW`).
    sparse_embeddings : {"auto", True, False}, default="auto"
        Sparse gradients and row-wise AdamW updates (:class:`deepfit.SparseAdamW`, which
        catches a returning row up on the steps it missed) for embedding tables;
        ``"auto"`` uses them for tables with more than ``4 * batch_size`` rows, where
        they are faster. A distributed fit on NCCL (GPUs) trains them dense: NCCL
        reduces no sparse gradients (gloo, on CPUs, does).
    clip : bool, default=True
        Clip continuous columns (date parts and ``elapsed`` included) to their training
        range at prediction (see :class:`TabularPreprocessor`), so the network does not
        extrapolate into a future (or a size) it never saw.
    cont_bins : int, default=16
        Bins per continuous column (at training quantiles) of a piecewise-linear
        encoding (:class:`tabular.model.PiecewiseLinearEmbedding`) that the network sees
        besides the value itself; 0 turns it off.
    cont_dim : int, default=8
        Width of each continuous column's piecewise-linear embedding.
    n_members : int, default=8
        Members of a batch ensemble (TabM-mini, Gorishniy et al. 2025): the MLP runs
        once per member on each row, each member with its own input adapter and head
        and its own loss; predictions average the members' (probabilities for a
        classifier). Costs about ``n_members`` times the MLP's compute; 1 turns it off.
        8 was chosen by 5-fold CV on the training parts of the tabular suite.
    epochs : int, default=50
        The most epochs of the one-cycle schedule; early stopping usually ends sooner.
    early_stopping : bool or int, default=10
        Hold out ``validation_fraction`` (0.1) of the rows, stop when their loss has not
        improved for 10 epochs and keep the best epoch's weights. ``False`` trains all
        ``epochs`` on every row (the earlier defaults: ``epochs=5`` without it).
    holdout : {"random", "latest"}, default="random"
        Which rows early stopping holds out: a random (stratified) share, or the most
        recent by the first datetime column. On the suite's three temporal tables,
        forward-in-time CV preferred the random hold-out (error ratio to HistGB 0.99
        against 1.04).
    lr, schedule, batch_size, validation_fraction, random_state, device, verbose,
    warm_start, amp, callbacks
        See :class:`deepfit.NeuralEstimator`.
"""

# Rows per forward pass at prediction time.
PREDICT_BATCH = 8192
# Rows of the uniform sample a streamed fit reads medians and bin edges from.
STREAM_SAMPLE = 100_000


def per_member(loss: Any) -> Any:
    """``loss`` over every member of a batch ensemble's ``(N, k, out)`` output, as if
    each member trained alone (their mean); an ``(N, out)`` output as it is."""

    def member_loss(
        pred: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None
    ) -> torch.Tensor:
        if pred.dim() == 3:
            k = pred.shape[1]
            pred, y = pred.flatten(0, 1), y.repeat_interleave(k, dim=0)
            w = None if w is None else w.repeat_interleave(k, dim=0)
        return loss(pred, y, w)

    return member_loss


class TabularEstimator(TransformerMixin, NeuralEstimator):
    """What the tabular estimators share (not used directly): parameters, the
    DataFrame to batches, the network, prediction and ``transform``."""

    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *NeuralEstimator._fitted_attributes,
        "preprocessor_",
        "cont_edges_",
        "stream_targets_",
    )

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **NeuralEstimator._parameter_constraints,
        "layers": [SequenceOf(Interval(numbers.Integral, 1, None))],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "embed_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "embedding_sizes": [InstanceOf(dict, "a dict of column -> width"), None],
        "cat_features": [InstanceOf((list, tuple), "a list of columns"), None],
        "cont_features": [InstanceOf((list, tuple), "a list of columns"), None],
        "min_frequency": [Interval(numbers.Integral, 1, None)],
        "int_levels": [Interval(numbers.Integral, 0, None)],
        "unknown_rate": [Interval(numbers.Real, 0, 1, closed="left")],
        "weight_decay": [Interval(numbers.Real, 0, None)],
        "sparse_embeddings": [Options(True, False, "auto")],
        "clip": [Boolean()],
        "cont_bins": [Interval(numbers.Integral, 0, None)],
        "cont_dim": [Interval(numbers.Integral, 1, None)],
        "n_members": [Interval(numbers.Integral, 1, None)],
        "holdout": [Options("random", "latest")],
    }

    # ---- data ---------------------------------------------------------------------------

    def _input_frame(self, X: Any, fitting: bool) -> pd.DataFrame:
        """``X`` as a DataFrame of the fitted columns: taken by name from a frame (their
        order and extra columns do not matter), by position from an array; scikit-learn's
        ``validate_data`` keeps ``feature_names_in_`` and ``n_features_in_`` and warns on
        a frame after a fit on an array, or the other way round."""
        df = to_frame(X)
        frame = is_frame(X)  # pandas, polars, pyarrow: named columns
        if frame:
            _check_names(df.columns)
        if fitting:
            self._fitted_on_frame = frame
            validate_data(self, df if frame else X, skip_check_array=True)
            return df
        names = self.preprocessor_.feature_names_in_
        if self._fitted_on_frame and frame:
            if df.columns.equals(pd.Index(names)):
                return df  # the fitted columns in the fitted order: nothing to check
            missing = [c for c in names if c not in df.columns]
            if missing:
                raise ValueError(f"X is missing column(s) seen in fit: {missing}")
            df = df[list(names)]
        validate_data(self, df if frame else X, reset=False, skip_check_array=True)
        if self._fitted_on_frame and not frame:
            df = df.set_axis(list(names), axis=1)
        elif not self._fitted_on_frame and frame:
            df = df.set_axis([f"x{i}" for i in range(df.shape[1])], axis=1)
        return df

    def _fit_data(
        self,
        X: Any,
        y: Any,
        eval_set: tuple[Any, Any] | None,
        reset: bool,
        sample_weight: Any = None,
        **kwargs: Any,
    ) -> FitData:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        if is_stream(X):
            return self._stream_fit_data(X, y, eval_set, reset, sample_weight)
        if reset:
            self.stream_targets_ = None
        df = self._input_frame(X, fitting=True)
        if len(df) == 0:
            raise ValueError(
                f"X has no rows (an empty frame): 0 sample(s) (shape={df.shape}) while "
                "a minimum of 1 is required."
            )
        if len(df) < 2:
            raise ValueError(
                f"need at least 2 samples to train, got n_samples = {len(df)}"
            )
        y_arr = self._check_target(y, len(df), reset)
        w = self._sample_weights(sample_weight, y_arr, len(df))
        if reset:
            self.preprocessor_ = TabularPreprocessor(
                cat_features=self.cat_features,
                cont_features=self.cont_features,
                min_frequency=self.min_frequency,
                int_levels=self.int_levels,
                clip=self.clip,
            )
            codes, cont = self.preprocessor_.fit_transform_arrays(
                df if self._fitted_on_frame else X
            )
            self._check_embedding_sizes()
            self.cont_edges_ = (
                quantile_edges(cont, self.cont_bins) if self.cont_bins else None
            )
        else:
            codes, cont = self.preprocessor_.transform_arrays(df)
        y_t = self._encode_target(y_arr)
        w_t = None if w is None else torch.as_tensor(w, dtype=torch.float32)
        x = (torch.from_numpy(codes), torch.from_numpy(cont))
        device = self._device()
        valid = None
        if eval_set is not None:
            Xv, yv = eval_set
            dfv = self._input_frame(Xv, fitting=False)
            yv_arr = self._check_target(yv, len(dfv), reset=False)
            cv, fv = self.preprocessor_.transform_arrays(dfv)
            valid = TensorBatches(
                (torch.from_numpy(cv), torch.from_numpy(fv)),
                self._encode_target(yv_arr),
                batch_size=PREDICT_BATCH,
                device=device,
            )
            train_idx = np.arange(len(df))
        else:
            train_idx, valid_idx = self._holdout_split(df, y_arr)
            if valid_idx is not None:
                vi = torch.from_numpy(valid_idx)
                valid = TensorBatches(
                    tuple(t[vi] for t in x),
                    y_t[vi],
                    None if w_t is None else w_t[vi],
                    batch_size=PREDICT_BATCH,
                    device=device,
                )
        if len(train_idx) < len(df):
            ti = torch.from_numpy(train_idx)
            x = tuple(t[ti] for t in x)
            y_t = y_t[ti]
            w_t = None if w_t is None else w_t[ti]
        n = len(y_t)
        train = TensorBatches(
            x,
            y_t,
            w_t,
            batch_size=min(self.batch_size, n),
            shuffle=True,
            # A last batch of one row would break batchnorm: drop the remainder then
            # (every epoch draws a new permutation, so no row is left out for good).
            drop_last=n % self.batch_size == 1,
            generator=self._generator(),
            device=device,
        )
        return FitData(train, valid, constant_loss=self._constant_loss())

    # ---- streamed data (parquet, Arrow datasets) ----------------------------------------

    def _stream_fit_data(
        self, X: Any, y: Any, eval_set: Any, reset: bool, sample_weight: Any
    ) -> FitData:
        """Batches streamed from a dataset too large for memory (see
        :mod:`deepfit.stream`): one pass fits the preprocessing and reads the targets;
        training and validation rows are told apart by a hash of their position."""
        targets, weight = fit_columns(y, sample_weight, eval_set, several=True)
        if self.holdout != "random":
            raise ValueError(
                f"holdout={self.holdout!r} is not supported with a streamed X (its "
                "validation rows are a hash split)"
            )
        source = open_dataset(X)
        frags = source.fragments
        source.check_columns(targets, "y")
        source.check_columns(weight, "sample_weight")
        self._stream_y_check(list(targets))
        single = isinstance(y, str)
        features = [c for c in source.names if c not in {*targets, *weight}]
        if not features:
            raise ValueError("the dataset has no feature columns besides y")
        source.check_columns(features, "the feature columns")
        if not reset and list(features) != list(self.feature_names_in_):
            raise ValueError(
                f"the dataset's feature columns {features} differ from the fitted ones "
                f"{list(self.feature_names_in_)}"
            )
        frac = valid_share(self._holdout_fraction(), frags)
        seed = self._seed
        columns = [*features, *targets, *weight]
        counts = np.zeros((len(frags), 2), dtype=np.int64)  # training, validation
        state = self._stream_y_start(single) if reset else None
        weight_sum = np.zeros(1)

        def frames() -> Any:
            for frag in frags:
                cols = columns if reset else [*targets, *weight]
                for offset, df in frag.frames(cols):
                    held = row_hash(frag.index, offset, len(df), seed) < frac
                    counts[frag.index] += (len(df) - held.sum(), held.sum())
                    y_part = df[list(targets)]
                    self._stream_y_update(state, y_part, frag.name)
                    if weight:
                        w = df[weight[0]].to_numpy(np.float64, na_value=np.nan)
                        check_sample_weight(w, len(df), part=True)
                        weight_sum[0] += w.sum()
                    yield df

        if reset:
            pre = TabularPreprocessor(
                cat_features=self.cat_features,
                cont_features=self.cont_features,
                min_frequency=self.min_frequency,
                int_levels=self.int_levels,
                clip=self.clip,
            )
            sample = RowSample(STREAM_SAMPLE, seed)
            pre.fit_frames(frames(), sample, columns=features)
            self._fitted_on_frame = True
            validate_data(self, sample.frame[features], skip_check_array=True)
            self.preprocessor_ = pre
            self._stream_y_finish(state, sample.frame[list(targets)])
            self._check_embedding_sizes()
            self.cont_edges_ = (
                quantile_edges(pre.transform_arrays(sample.frame)[1], self.cont_bins)
                if self.cont_bins
                else None
            )
        else:
            for _ in frames():  # the targets' check, before any training
                pass
        if weight and weight_sum[0] <= 0:
            raise ValueError(
                f"sample_weight column {weight[0]!r} is zero in every row: nothing "
                "would be learned"
            )
        pre = self.preprocessor_
        self.stream_targets_ = list(targets)

        def convert(df: pd.DataFrame) -> list[torch.Tensor]:
            codes, cont = pre.transform_arrays(df)
            y_arr = self._stream_y_array(df[list(targets)])
            out = [torch.from_numpy(codes), torch.from_numpy(cont)]
            out.append(self._encode_target(y_arr))
            w = self._stream_weights(y_arr)
            if weight:
                col = df[weight[0]].to_numpy(np.float64)
                w = col if w is None else w * col
            if w is not None:
                out.append(torch.as_tensor(w, dtype=torch.float32))
            return out

        n_train = int(counts[:, 0].sum())
        if n_train < 2:
            raise ValueError(
                f"need at least 2 training rows, got {n_train} after holding out "
                f"validation_fraction={frac}"
            )

        train, valid = split_batches(
            frags,
            columns,
            convert,
            2,
            counts,
            frac,
            seed,
            batch_size=self.batch_size,
            valid_batch_size=PREDICT_BATCH,
            generator=self._generator(),
        )
        return FitData(train, valid, constant_loss=self._constant_loss())

    def _stream_y_check(self, targets: list[str]) -> None:
        """Refuse target columns this estimator cannot stream."""

    def _stream_y_start(self, single: bool) -> Any:
        """The running state of the targets' streamed statistics (``single``: ``y``
        named one column, as a str)."""
        return None

    def _stream_y_update(self, state: Any, y: pd.DataFrame, where: str) -> None:
        """Check a frame of targets (``where`` names its row group) and add it to
        ``state`` (``None`` when warm-starting: check only)."""

    def _stream_y_finish(self, state: Any, sample: pd.DataFrame) -> None:
        """Set the fitted target attributes from ``state`` (and a sample of rows)."""

    def _stream_y_array(self, y: pd.DataFrame) -> np.ndarray:
        """A frame of target columns as the array ``_encode_target`` takes."""
        raise NotImplementedError

    def _stream_weights(self, y: np.ndarray) -> np.ndarray | None:
        """Per-row loss weights of a streamed batch's targets (class weights)."""
        return None

    def _sample_weights(self, sample_weight: Any, y: np.ndarray, n: int) -> Any:
        w = check_sample_weight(sample_weight, n)
        cw = self._class_sample_weight(y)
        if cw is not None:
            w = cw if w is None else w * cw
        return w

    def _class_sample_weight(self, y: np.ndarray) -> np.ndarray | None:
        return None

    def _holdout_split(
        self, df: pd.DataFrame, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Training and early-stopping rows (see ``holdout``): a random (stratified)
        split, or the latest rows by the first datetime column."""
        dates = self.preprocessor_.date_features_
        train_idx, valid_idx = self._validation_split(len(df), self._stratify(y))
        if self.holdout == "random" or valid_idx is None:
            return train_idx, valid_idx
        if not dates:
            raise ValueError(
                "holdout='latest' needs a datetime column to order the rows by"
            )
        col = dates[0]
        when = pd.to_datetime(df[col], utc=self.preprocessor_.date_tz_[col] is not None)
        # Missing dates count as the earliest; the order is stable among equal dates.
        order = np.argsort(
            when.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT")).astype(
                np.int64
            ),
            kind="stable",
        )
        n_valid = len(valid_idx)
        return np.sort(order[:-n_valid]), np.sort(order[-n_valid:])

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        return None

    def _check_embedding_sizes(self) -> None:
        sizes = self.embedding_sizes or {}
        unknown = [c for c in sizes if c not in self.preprocessor_.cat_names_]
        if unknown:
            raise ValueError(
                f"embedding_sizes names column(s) {unknown} that are not categorical; "
                f"categorical columns: {self.preprocessor_.cat_names_}"
            )
        for c, v in sizes.items():
            if not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"embedding width for {c!r} must be >= 1, got {v!r}")

    # ---- model --------------------------------------------------------------------------

    def _emb_szs(self) -> list[tuple[int, int]]:
        sizes = self.embedding_sizes or {}
        pre = self.preprocessor_
        return [
            (c, int(sizes.get(col, embedding_width(c))))
            for col, c in zip(pre.cat_names_, pre.cardinalities_, strict=True)
        ]

    def _sparse_flags(self) -> list[bool]:
        cards = self.preprocessor_.cardinalities_
        if not distributed.sparse_gradients_ok():  # NCCL reduces dense tensors only
            return [False] * len(cards)
        if self.sparse_embeddings == "auto":
            # A batch touches at most batch_size rows of a table. Past a few times that,
            # a dense step mostly rewrites rows (and Adam moments) that had no gradient,
            # and a row-wise sparse step is faster (benchmarks/tabular_throughput).
            return [c > 4 * self.batch_size for c in cards]
        return [bool(self.sparse_embeddings)] * len(cards)

    def _build_module(self) -> nn.Module:
        return TabularModel(
            self._emb_szs(),
            len(self.preprocessor_.cont_names_),
            self._out_size(),
            layers=tuple(self.layers),
            ps=self.dropout,
            embed_p=self.embed_dropout,
            y_range=self._model_y_range(),
            use_bn=True,
            unknown_p=self.unknown_rate,
            sparse=self._sparse_flags(),
            cont_edges=self.cont_edges_,
            cont_dim=self.cont_dim,
            n_members=self.n_members,
            combine=self._combine(),
        )

    def _combine(self) -> str:
        """How the members of a batch ensemble combine (see ``TabularModel``)."""
        return "mean"

    def _model_y_range(self) -> Any:
        return None

    def _layer_groups(self, module: nn.Module) -> list[Any]:
        return splitter(module)

    def _opt_func(self, module: nn.Module) -> Any:
        # foreach: one fused call per group for the dense tensors (about 15% faster
        # per step than torch's per-tensor default on CPU, measured on an Adult model).
        return partial(
            SparseAdamW,
            betas=(0.9, 0.99),
            weight_decay=self.weight_decay,
            foreach=True,
        )

    # ---- prediction -----------------------------------------------------------------------

    def _outputs(self, X: Any) -> torch.Tensor:
        """Raw network outputs for ``X``, through the engine's prediction path, in
        chunks of 8192 rows."""
        check_is_fitted(self)
        if is_stream(X):
            return torch.cat(list(self._stream_outputs(X)))
        return self._frame_outputs(self._input_frame(X, fitting=False))

    def _constant_loss(self) -> float | None:
        """The training loss of a constant prediction (see ``FitData``)."""
        return None

    def _frame_outputs(self, df: pd.DataFrame) -> torch.Tensor:
        """Raw network outputs for the rows of a checked frame."""
        codes, cont = self.preprocessor_.transform_arrays(df)
        x = (torch.from_numpy(codes), torch.from_numpy(cont))
        return self._predict_outputs(TensorBatches(x, batch_size=PREDICT_BATCH))

    def _stream_frames(self, X: Any) -> Any:
        """The fitted feature columns of a streamed ``X``, a record batch at a time."""
        source = open_dataset(X)
        names = list(self.preprocessor_.feature_names_in_)
        source.check_columns(names, "the fitted model")
        return read_frames(source.fragments, names)

    def _stream_outputs(self, X: Any) -> Any:
        """Raw outputs of each record batch of a streamed ``X``, in order."""
        for df in self._stream_frames(X):
            yield self._frame_outputs(df)

    def _streamed(self, X: Any, post: Any, names: list[str], out: Any) -> Any:
        """``post`` of the raw outputs of ``X`` (an array); or, given ``out`` and a
        streamed ``X``, a parquet file at ``out`` with columns ``names``, written a
        record batch at a time (``out`` is returned)."""
        if out is None:
            return post(self._outputs(X))
        if not is_stream(X):
            raise ValueError("out= is for a streamed X (a parquet path or dataset)")

        def frames() -> Any:
            for chunk in self._stream_outputs(X):
                values = np.asarray(post(chunk))
                yield pd.DataFrame(values.reshape(len(values), -1), columns=names)

        return write_parquet(frames(), out, X)

    def transform(self, X: Any, out: Any = None) -> Any:
        """The learned entity embeddings of each categorical column
        (``<col>_emb<j>``) and the standardised continuous columns, as a DataFrame indexed
        like ``X``: features for another model (say gradient boosting). For a streamed
        ``X``, ``out`` (a path) writes them to a parquet file instead."""
        check_is_fitted(self)
        if not is_stream(X):
            if out is not None:
                raise ValueError("out= is for a streamed X (a parquet path or dataset)")
            return self._embed_frame(self._input_frame(X, fitting=False))
        frames = (self._embed_frame(df) for df in self._stream_frames(X))
        if out is not None:
            return write_parquet(frames, out, X)
        return pd.concat(list(frames), ignore_index=True)

    def _embed_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        codes, cont = self.preprocessor_.transform_arrays(df)
        parts = [
            emb.weight.detach().cpu().numpy()[codes[:, j]]
            for j, emb in enumerate(self.module_.embeds)
        ]
        parts.append(cont)
        values = np.concatenate(parts, axis=1)
        return pd.DataFrame(
            values, columns=self.get_feature_names_out(), index=df.index
        )

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> pd.DataFrame:
        """``fit(X, y, **fit_params)``, then :meth:`transform` ``(X)``."""
        return self.fit(X, y, **fit_params).transform(X)

    def export(self, path: Any = None) -> Any:
        """The fitted network for serving, as a ``torch.export.ExportedProgram`` (saved
        with ``torch.export.save`` when ``path`` is given). It takes what
        ``preprocessor_.transform_arrays(X)`` gives, as tensors: int64 codes
        ``(N, n_cat)`` and float32 continuous values ``(N, n_cont)``, any ``N``; it
        returns the raw outputs: logits (softmax, or a sigmoid per label, for
        probabilities) or standardised regression values (``predict`` maps them back:
        ``* y_scale_ + y_mean_``, then ``expm1`` where ``log_target_``)."""
        return self._export(self._export_example(), path)

    def export_onnx(self, path: Any) -> Any:
        """The fitted network for serving, written to ``path`` as an ONNX model (needs
        the ``export`` extra: ``pip install 'deepfit[export]'``). Its inputs and outputs
        are :meth:`export`'s, named: ``codes`` (int64 ``(N, n_cat)``) and ``cont``
        (float32 ``(N, n_cont)``) in, ``output`` out, any ``N``. Returns the
        ``torch.onnx.ONNXProgram``. Served with onnxruntime::

            est.export_onnx("model.onnx")
            session = onnxruntime.InferenceSession("model.onnx")
            codes, cont = est.preprocessor_.transform_arrays(X)
            (output,) = session.run(None, {"codes": codes, "cont": cont})
        """
        example = self._export_example()
        return self._export_onnx(example, path, ["codes", "cont"], ["output"])

    def _export_example(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Two rows of the network's inputs, for tracing."""
        check_is_fitted(self)
        pre = self.preprocessor_
        return (
            torch.zeros((2, len(pre.cat_names_)), dtype=torch.long),
            torch.zeros((2, len(pre.cont_names_)), dtype=torch.float32),
        )

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Column names of :meth:`transform`'s output."""
        check_is_fitted(self)
        pre = self.preprocessor_
        # The continuous columns keep their names; an embedding column that would read
        # like one (a column "city_emb0" beside "city") gets a suffix.
        emb = [
            f"{col}_emb{k}"
            for col, e in zip(pre.cat_output_names_, self.module_.embeds, strict=True)
            for k in range(e.embedding_dim)
        ]
        emb = unique_names(emb, set(pre.cont_names_))
        return np.asarray(emb + list(pre.cont_names_), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        # transform() gives the learned embeddings: a transformer too.
        tags.transformer_tags = TransformerTags(preserves_dtype=[])
        return tags


def _check_names(columns: pd.Index) -> None:
    """Column names scikit-learn can keep as ``feature_names_in_``: unique, and all
    strings or none."""
    if columns.has_duplicates:
        dup = list(pd.unique(columns[columns.duplicated()]))
        raise ValueError(
            f"X has duplicate column name(s) {dup}: give each column its own name"
        )
    strings = [isinstance(c, str) for c in columns]
    if any(strings) and not all(strings):
        mixed = [columns[strings.index(True)], columns[strings.index(False)]]
        raise ValueError(
            f"X's column names mix strings and other types (e.g. {mixed}); "
            "scikit-learn keeps feature names only when all are strings: rename the "
            "columns, say X.columns = X.columns.astype(str) where that keeps them unique"
        )
