"""Conformance checks for loss plugins: one call per loss.

>>> from graphdl.testing.losses import check_loss
>>> check_loss("supcon")                     # a registered name
>>> check_loss(MyLoss(margin=0.3), inputs=((emb, labels), {}))

:func:`check_loss` builds the loss for every reduction it supports and checks
that the value is finite, that ``"mean"``/``"sum"`` give a scalar and
``"none"`` a tensor whose sum equals ``"sum"``, that the gradient reaches every
input (and every learnable parameter of the loss), that the gradient passes
``torch.autograd.gradcheck`` in float64, that an unknown reduction raises
:class:`~graphdl.errors.ValidationError`, and that ``repr`` shows the
hyper-parameters. A failed check raises ``AssertionError`` saying which (a call
that raises also names the shapes and dtypes of the inputs it was given).

Inputs come from ``inputs=``, else from the loss's ``example_inputs()``
(graphdl's :class:`~graphdl.losses.Loss` subclasses define one), else from
the registry ``kind`` of the entry (``metric``, ``classification``,
``regression``, ``divergence``); ``ranking`` and ``graph`` losses that do not
define ``example_inputs`` must be given ``inputs``.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.gradcheck import GradcheckError

from graphdl.errors import ValidationError
from graphdl.registry import keyword_names
from graphdl.testing.layers import _keeps_caller_state, _seed

__all__ = ["check_loss", "default_inputs"]

_SCALAR_REDUCTIONS = ("mean", "sum", "batchmean")


def default_inputs(kind: str | None, dtype: torch.dtype = torch.float64,
                   generator: torch.Generator | None = None) -> tuple[tuple, dict]:
    """Small valid ``(args, kwargs)`` for a loss of the given registry ``kind``."""
    g = generator
    if kind == "metric":
        emb = torch.randn(12, 6, dtype=dtype, generator=g).requires_grad_()
        labels = torch.arange(4).repeat_interleave(3)[torch.randperm(12, generator=g)]
        return (emb, labels), {}
    if kind == "classification":
        return (torch.randn(8, 5, dtype=dtype, generator=g).requires_grad_(),
                torch.randint(0, 5, (8,), generator=g)), {}
    if kind == "regression":
        return (torch.randn(8, 2, dtype=dtype, generator=g).requires_grad_(),
                torch.randn(8, 2, dtype=dtype, generator=g)), {}
    if kind == "divergence":
        inp = F.log_softmax(torch.randn(5, 4, dtype=dtype, generator=g), -1).requires_grad_()
        return (inp, torch.softmax(torch.randn(5, 4, dtype=dtype, generator=g), -1)), {}
    raise ValueError(
        f"no default inputs for losses of kind {kind!r}; give the loss an example_inputs() "
        f"method or pass inputs=((args...), {{kwargs}}) to check_loss"
    )


def _require(ok: object, message: str) -> None:
    """A check that ``python -O`` keeps (it strips ``assert`` statements): raise AssertionError with ``message``."""
    if not ok:
        raise AssertionError(message)


def _clone(x: Any, float_dtype: torch.dtype | None = None) -> Any:
    """Detached copies of the tensors in ``x`` (keeping ``requires_grad``); float ones cast to ``float_dtype``."""
    if isinstance(x, Tensor):
        y = x.detach().clone()
        if float_dtype is not None and y.is_floating_point():
            y = y.to(float_dtype)
        return y.requires_grad_() if x.requires_grad else y
    if isinstance(x, tuple):
        return tuple(_clone(v, float_dtype) for v in x)
    if isinstance(x, list):
        return [_clone(v, float_dtype) for v in x]
    if isinstance(x, dict):
        return {k: _clone(v, float_dtype) for k, v in x.items()}
    return x


def _leaves(x: Any) -> list[Tensor]:
    if isinstance(x, Tensor):
        return [x] if x.requires_grad else []
    if isinstance(x, (tuple, list)):
        return [t for v in x for t in _leaves(v)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _leaves(v)]
    return []


def _replace_leaves(x: Any, it: Any) -> Any:
    if isinstance(x, Tensor):
        return next(it) if x.requires_grad else x
    if isinstance(x, tuple):
        return tuple(_replace_leaves(v, it) for v in x)
    if isinstance(x, list):
        return [_replace_leaves(v, it) for v in x]
    if isinstance(x, dict):
        return {k: _replace_leaves(v, it) for k, v in x.items()}
    return x


def _describe(x: Any) -> str:
    """Shapes and dtypes of the tensors in ``x``, for messages: ``Tensor(12, 6) float64 requires_grad``."""
    if isinstance(x, Tensor):
        dtype = str(x.dtype).replace("torch.", "")
        return f"Tensor{tuple(x.shape)} {dtype}" + (" requires_grad" if x.requires_grad else "")
    if isinstance(x, list):
        return "[" + ", ".join(_describe(v) for v in x) + "]"
    if isinstance(x, tuple):
        return "(" + ", ".join(_describe(v) for v in x) + ("," if len(x) == 1 else "") + ")"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in x.items()) + "}"
    return repr(x)


def _scalar_hparams(target: Any) -> list[str]:
    """Constructor arguments with plain (number, bool, str) defaults."""
    init = target.__init__ if inspect.isclass(target) else target
    try:
        params = inspect.signature(init).parameters
    except (TypeError, ValueError):
        return []
    out = []
    for name, p in params.items():
        if name in ("self", "reduction") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is p.empty or isinstance(p.default, (bool, int, float, str)):
            out.append(name)
    return out


@_keeps_caller_state
def check_loss(
    loss: str | nn.Module,
    *,
    inputs: tuple[tuple, dict] | tuple | None = None,
    init_kwargs: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
    gradcheck: bool = True,
    rtol: float = 1e-6,
) -> dict[str, Any]:
    """Run the loss conformance suite on a registered name or a loss module.

    Args:
        loss: a name registered in :mod:`graphdl.losses` (plugins included) or a module.
        inputs: ``(args, kwargs)`` (or just ``args``) to call the loss with;
            floating tensors with ``requires_grad=True`` are the ones checked
            for gradients. Default: see the module docstring.
        init_kwargs: extra constructor arguments when ``loss`` is a name
            (merged over the class's ``example_init``); refused with a module, which is built already.
        dtype: dtype of the generated inputs; ``gradcheck`` runs only when it is float64.
        seed: seed of the generated inputs (the caller's random generator state is restored afterwards).
        gradcheck: also run :func:`torch.autograd.gradcheck`, on float64 copies of the inputs.
        rtol: tolerance of the ``none.sum() == sum`` check.

    Returns:
        ``{"name", "kind", "reductions", "values"}`` of what was checked.
    """
    from graphdl.losses import LOSSES, kind_of
    from graphdl.losses.base import KINDS

    init_kwargs = dict(init_kwargs or {})
    kind: str | None = None
    if isinstance(loss, str):
        entry = LOSSES.entry(loss)
        name, target = entry.name, entry.obj
        kind = entry.meta.get("kind") or getattr(target, "kind", None)
        _require(kind in KINDS, (
            f"loss {name!r} has kind={kind!r}; register it with kind= one of {KINDS} (or give the class "
            f"a `kind` attribute, as graphdl.losses.Loss subclasses have) so the Trainer knows how to call it"
        ))
        kwargs0 = {**getattr(target, "example_init", {}), **init_kwargs}
        accepted, complete = keyword_names(target)
        _require("reduction" in accepted or not complete, (
            f"{name}: check_loss builds the loss once per reduction with reduction=...; let "
            f"{getattr(target, '__name__', name)} take reduction= and pass it on to the module it builds"
        ))

        def build(**kw: Any) -> nn.Module:
            return LOSSES.create(name, **{**kwargs0, **kw})
        fit = (f"check_loss({name!r}, inputs=((args...), {{kwargs}})), build the loss to fit these with "
               f"check_loss({name!r}, init_kwargs={{...}}), or give the class an example_inputs(dtype, generator) "
               f"method")
    else:
        _require(isinstance(loss, nn.Module), f"check_loss needs a name or an nn.Module, got {type(loss)!r}")
        if init_kwargs:  # a built module cannot take them: ignoring them would test another loss than asked
            raise ValueError(f"check_loss: init_kwargs={init_kwargs!r} apply to a registered name only; build the "
                             f"module with them ({type(loss).__name__}(...)) or pass its registered name")
        name, target, proto = type(loss).__name__, type(loss), loss
        kind = kind_of(loss)  # as the Trainer reads it: a factory's kind is on its registration, not the module
        fit = ("check_loss(loss, inputs=((args...), {kwargs})), build the module to fit these, or give its "
               "class an example_inputs(dtype, generator) method")

        def build(**kw: Any) -> nn.Module:
            m = copy.deepcopy(proto)
            for k, v in kw.items():
                setattr(m, k, v)
            return m

    try:
        base = build()
    except Exception as exc:  # noqa: BLE001 - e.g. a required constructor argument not given
        if not isinstance(loss, str):
            raise
        raise AssertionError(f"{name}: could not be built ({type(exc).__name__}: {exc}); pass its constructor "
                             f"arguments with check_loss({name!r}, init_kwargs={{...}})") from exc
    _require(isinstance(base, nn.Module), f"{name}: the registered factory must return an nn.Module")
    reductions = tuple(getattr(base, "reductions", ("mean", "sum", "none")))
    _require(reductions, f"{name}: declares no reductions")

    gen = torch.Generator().manual_seed(seed)
    source = "the inputs= given"
    if inputs is None:
        source = f"the default inputs for kind={kind!r}"
        if hasattr(base, "example_inputs"):
            try:
                inputs = base.example_inputs(dtype=dtype, generator=gen)
                source = "its example_inputs()"
            except NotImplementedError:
                inputs = default_inputs(kind, dtype, gen)
        else:
            inputs = default_inputs(kind, dtype, gen)
    if not (isinstance(inputs, tuple) and len(inputs) == 2 and isinstance(inputs[0], tuple)
            and isinstance(inputs[1], dict)):
        inputs = (tuple(inputs), {})
    args0, kwargs0_call = inputs

    def called(what: str, exc: Exception) -> AssertionError:
        """A failed call or backward, naming the inputs and how to give others (finding which input does not
        fit is left to the user, who sees shapes and dtypes here rather than a bare torch traceback)."""
        return AssertionError(f"{what} raised {type(exc).__name__}: {exc}. check_loss called loss(*args, **kwargs) "
                              f"with {source}: args {_describe(args0)}, kwargs {_describe(kwargs0_call)}; if the "
                              f"loss takes other inputs, give them with {fit}")
    _require(_leaves((args0, kwargs0_call)), (
        f"{name}: none of the inputs requires grad; mark the differentiable inputs with "
        f"requires_grad_()"
    ))

    values: dict[str, Tensor] = {}
    for red in reductions:
        module = build(reduction=red)
        _require(getattr(module, "reduction", red) == red, f"{name}: reduction={red!r} was not applied")
        args, kwargs = _clone(args0), _clone(kwargs0_call)
        _seed(seed)
        try:
            out = module(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any failure of the call is reported with its inputs
            raise called(f"{name}[{red}]: the value check: calling the loss", exc) from exc
        _require(isinstance(out, Tensor), f"{name}[{red}]: returned {type(out).__name__}, not a Tensor")
        _require(bool(torch.isfinite(out).all()), f"{name}[{red}]: value is not finite: {out}")
        if red in _SCALAR_REDUCTIONS:
            _require(out.dim() == 0, f"{name}[{red}]: expected a scalar, got shape {tuple(out.shape)}")
        else:
            _require(out.dim() >= 1, f"{name}[{red}]: expected a tensor of terms, got a scalar")
        # a value without a graph would fail in backward() with torch's bare RuntimeError
        _require(out.requires_grad, (
            f"{name}[{red}]: the value carries no gradient (it does not require grad); is a tensor detached "
            f"(.detach(), .item(), .numpy()) or computed under torch.no_grad() on the way?"
        ))
        try:
            out.sum().backward()
        except Exception as exc:  # noqa: BLE001
            raise called(f"{name}[{red}]: the gradient check: backward() through the value", exc) from exc
        leaves = _leaves((args, kwargs))
        for i, t in enumerate(leaves):
            _require(t.grad is not None, f"{name}[{red}]: no gradient reached differentiable input #{i}")
            _require(bool(torch.isfinite(t.grad).all()), f"{name}[{red}]: non-finite gradient for input #{i}")
        _require(any(bool(t.grad.ne(0).any()) for t in leaves), (
            f"{name}[{red}]: the gradient is zero for every input"
        ))
        for pname, p in module.named_parameters():
            if p.requires_grad:
                _require(p.grad is not None, f"{name}[{red}]: parameter {pname!r} got no gradient")
                _require(bool(torch.isfinite(p.grad).all()), f"{name}[{red}]: non-finite gradient for {pname!r}")
        values[red] = out.detach()

    if "none" in values and "sum" in values:
        total, none = values["sum"], values["none"].sum()
        _require(torch.allclose(none, total, rtol=rtol, atol=1e-9), (
            f"{name}: reduction='none' terms sum to {none.item()} but reduction='sum' gives {total.item()}"
        ))

    try:
        build(reduction="no-such-reduction")
    except ValidationError as exc:
        _require("reduction" in str(exc), f"{name}: the bad-reduction error does not name 'reduction': {exc}")
    except Exception as exc:  # noqa: BLE001 - the point is which error
        raise AssertionError(f"{name}: reduction='no-such-reduction' raised {type(exc).__name__} ({exc}), not a "
                             f"graphdl.errors.ValidationError; raise ValidationError naming reduction (or "
                             f"subclass graphdl.losses.Loss, whose reduction setter does)") from exc
    else:
        raise AssertionError(f"{name}: reduction='no-such-reduction' was accepted; raise ValidationError")

    text = repr(base)
    missing = [h for h in _scalar_hparams(target) if f"{h}=" not in text]
    _require(not missing, (f"{name}: repr {text!r} does not show hyper-parameter(s) {missing}; store each "
                           f"constructor argument under its own name (self.{missing[0]} = {missing[0]}), which the "
                           f"repr of graphdl.losses.Loss shows" if missing else ""))

    if gradcheck and dtype == torch.float64:
        red = "sum" if "sum" in reductions else reductions[0]
        module = build(reduction=red).double()
        # float64 copies: given float32 inputs, a finite difference with eps=1e-6 is rounding noise
        args, kwargs = _clone(args0, torch.float64), _clone(kwargs0_call, torch.float64)
        leaves = _leaves((args, kwargs))

        def fn(*xs: Tensor) -> Tensor:
            a, k = _replace_leaves((args, kwargs), iter(xs))
            _seed(seed)
            return module(*a, **k)

        try:
            torch.autograd.gradcheck(fn, tuple(leaves), eps=1e-6, atol=1e-5, rtol=1e-4)
        except GradcheckError as exc:  # it raises rather than return False
            raise AssertionError(f"{name}: gradcheck failed: with reduction={red!r}, the gradient autograd "
                                 f"computes is not the numerical one (a wrong custom backward?): {exc}") from None
        except Exception as exc:  # noqa: BLE001 - e.g. a loss that fails on float64 copies of the inputs
            raise called(f"{name}: gradcheck: calling the loss (reduction={red!r}) on float64 copies of the "
                         f"inputs", exc) from exc

    return {"name": name, "kind": kind, "reductions": reductions, "values": values}
