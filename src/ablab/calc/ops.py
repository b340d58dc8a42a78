"""What one aten operator costs, under ablab's conventions — the operator table of the module tracer.

Every operator a traced forward or backward runs is looked up here by its overload packet name
(``convolution``, ``addmm``, ``relu``, ...). Its cost is computed from the real argument shapes, with
the same conventions as a spec (:class:`ablab.calc.costs.Conventions`):

* convolutions and matrix products: MACs = output elements × the dot length; FLOPs from the ``dot``
  convention (2n or 2n-1), plus one per output element for a bias add when ``bias`` is on;
  ``convolution_backward`` counts the input gradient and the weight gradient it computes (each one
  a convolution as large as the forward);
* pooling and pooling-like reductions (``mean``, ``sum``, ``amax``): the ``pooling`` convention
  (max k-1 comparisons, average k per output element, k = input elements per output);
* batch/layer/group norm: the ``norm`` convention (2 FLOPs per element);
* element-wise operators — activations, residual adds, scaling, and their gradients: the
  ``activation`` convention (``--act-flops`` FLOPs per output element);
* data movement (views, flatten, cat, padding, dropout masks): no FLOPs;
* fused recurrent and attention kernels (oneDNN/cuDNN RNN layers, scaled-dot-product attention,
  the fast-path transformer layer and multi-head attention): the matrix products they compute, by the
  formulas in :func:`fused_cost` — the same MACs as the MATH / decomposed path of the same module.

An operator not in the table is *unknown*: it is never counted as zero silently — the tracer names it.
Pure Python: shapes in, integers out.
"""

from __future__ import annotations

from dataclasses import dataclass

from ablab.calc.costs import Conventions, prod

Shape = tuple[int, ...]

MOVE = frozenset({
    "view", "_unsafe_view", "reshape", "flatten", "permute", "transpose", "t", "expand", "squeeze", "unsqueeze",
    "contiguous", "clone", "cat", "stack", "split", "split_with_sizes", "chunk", "slice", "select", "narrow",
    "index_select", "constant_pad_nd", "pad", "repeat", "_to_copy", "alias", "unbind", "upsample_nearest1d",
    "upsample_nearest2d", "embedding", "index", "gather", "flip", "roll", "copy_", "as_strided", "unfold",
    "new_zeros", "zeros_like", "ones_like", "empty_like", "masked_fill", "masked_fill_", "fill_", "zero_",
    "_reshape_alias", "lift_fresh", "movedim", "channel_shuffle", "pixel_shuffle", "pixel_unshuffle",
    "slice_backward", "select_backward", "embedding_dense_backward", "_unsafe_index", "scatter", "scatter_add",
    "index_put", "index_put_", "max_pool2d_with_indices_backward", "max_pool1d_with_indices_backward",
    "adaptive_max_pool2d_backward", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk", "new_empty",
    "new_ones", "new_full", "full_like", "transpose_", "t_", "squeeze_", "unsqueeze_", "as_strided_", "detach_copy",
    # padding by reflection/replication, max unpooling and sequence packing only move values
    *(f"{k}_pad{d}d{b}" for k in ("reflection", "replication") for d in (1, 2, 3) for b in ("", "_backward")),
    "max_unpool2d", "max_unpool3d", "_pack_padded_sequence", "_pack_padded_sequence_backward", "_pad_packed_sequence",
})
# tensors a forward makes from nothing (an RNN's zero hidden state): data when they carry the batch axis
FACTORY = frozenset({"zeros", "ones", "full", "empty", "empty_strided", "randn", "rand"})
# fused kernels, costed by formula (see fused_cost)
RNN = frozenset({"mkldnn_rnn_layer", "mkldnn_rnn_layer_backward", "_cudnn_rnn", "_cudnn_rnn_backward",
                 "miopen_rnn", "miopen_rnn_backward"})
ATTENTION = frozenset({
    "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_backward",
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_cudnn_attention_backward",
    "_scaled_dot_product_fused_attention_overrideable", "_flash_attention_forward", "_flash_attention_backward",
    "_efficient_attention_forward", "_efficient_attention_backward",
})
FUSED_LAYERS = frozenset({"_transformer_encoder_layer_fwd", "_native_multi_head_attention"})
FUSED = RNN | ATTENTION | FUSED_LAYERS
# quantized kernels (packed weights): the products of the float layer they replace
QUANTIZED = frozenset({f"quantized.{k}" for k in (
    "conv1d", "conv2d", "conv3d", "conv1d_relu", "conv2d_relu", "conv3d_relu", "conv_transpose1d", "conv_transpose2d",
    "linear", "linear_relu", "linear_dynamic", "linear_relu_dynamic", "linear_dynamic_fp16")})


def qualified(name: str) -> str:
    """The operator's full name: aten.convolution, quantized.conv2d."""
    return name if "." in name else f"aten.{name}"
DROPOUT = frozenset({"native_dropout", "dropout", "bernoulli", "bernoulli_", "native_dropout_backward"})
ELEMENTWISE = frozenset({
    "relu", "relu_", "threshold", "threshold_backward", "tanh", "tanh_", "tanh_backward", "sigmoid", "sigmoid_",
    "sigmoid_backward", "gelu", "gelu_backward", "silu", "silu_", "silu_backward", "leaky_relu", "leaky_relu_",
    "leaky_relu_backward", "hardtanh", "hardtanh_", "hardtanh_backward", "elu", "elu_", "elu_backward",
    "softplus", "softplus_backward", "hardswish", "hardswish_", "hardswish_backward", "hardsigmoid",
    "hardsigmoid_backward", "mish", "mish_backward", "_softmax", "_safe_softmax", "_log_softmax",
    "_softmax_backward_data",
    "_log_softmax_backward_data", "clamp", "clamp_", "clamp_min", "clamp_min_", "clamp_max", "exp", "exp_", "log",
    "log_", "sqrt", "rsqrt", "neg", "abs", "pow", "sin", "cos", "erf", "reciprocal", "sign", "square", "add",
    "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "maximum", "minimum", "where", "lerp", "addcmul",
    "addcdiv", "eq", "ne", "lt", "le", "gt", "ge", "logical_not", "nll_loss_forward", "nll_loss_backward",
    "prelu", "_prelu_kernel", "_prelu_kernel_backward", "glu", "log_sigmoid_forward", "softshrink", "hardshrink",
})
REDUCE = frozenset({"mean", "sum", "amax", "amin", "max", "min", "argmax", "argmin", "_adaptive_avg_pool2d",
                    "adaptive_avg_pool2d", "adaptive_avg_pool1d", "_adaptive_avg_pool2d_backward",
                    "adaptive_max_pool2d", "logsumexp"})
POOL = frozenset({"max_pool2d_with_indices", "max_pool2d", "max_pool1d", "max_pool1d_with_indices", "avg_pool2d",
                  "avg_pool1d", "avg_pool2d_backward", "avg_pool1d_backward"})
NORM = frozenset({"native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
                  "native_layer_norm", "native_group_norm", "native_batch_norm_backward", "native_layer_norm_backward",
                  "native_group_norm_backward", "_native_batch_norm_legit_functional"})
MATMUL = frozenset({"mm", "addmm", "bmm", "baddbmm", "matmul", "dot", "mv", "addmv"})
CONV = frozenset({"convolution", "_convolution", "convolution_backward", "_slow_conv2d_forward",
                  "mkldnn_convolution", "thnn_conv2d"})
IGNORED = frozenset({"detach", "detach_", "empty", "empty_strided", "zeros", "ones", "full", "arange", "scalar_tensor",
                     "_local_scalar_dense", "lift_fresh_copy", "is_same_size", "size", "stride", "dim", "numel",
                     "sym_size", "sym_stride", "sym_numel", "is_contiguous", "storage_offset", "item", "set_",
                     "resize_", "_has_compatible_shallow_copy_type", "randperm", "rand", "randn", "normal_",
                     "uniform_", "empty_like", "copy"})
NAMES = {"convolution": "conv", "_convolution": "conv", "addmm": "linear", "mm": "linear", "bmm": "matmul",
         "baddbmm": "matmul", "max_pool2d_with_indices": "maxpool2d", "max_pool1d_with_indices": "maxpool1d",
         "max_pool2d": "maxpool2d", "max_pool1d": "maxpool1d", "avg_pool2d": "avgpool2d", "avg_pool1d": "avgpool1d",
         "_adaptive_avg_pool2d": "adaptiveavgpool2d", "adaptive_max_pool2d": "adaptivemaxpool2d", "relu_": "relu",
         "threshold": "relu", "_softmax": "softmax",
         "_safe_softmax": "softmax", "_log_softmax": "log_softmax", "native_dropout": "dropout",
         "native_batch_norm": "batchnorm", "_native_batch_norm_legit": "batchnorm",
         "_native_batch_norm_legit_no_training": "batchnorm", "native_layer_norm": "layernorm",
         "native_group_norm": "groupnorm", "constant_pad_nd": "pad", "_unsafe_view": "view", "tanh_": "tanh",
         "sigmoid_": "sigmoid", "add_": "add", "mul_": "mul", "sub_": "sub", "div_": "div", "clamp_": "clamp",
         "leaky_relu_": "leaky_relu", "silu_": "silu", "hardtanh_": "hardtanh"}


@dataclass(frozen=True)
class OpCost:
    """The cost of one operator call on the whole traced batch."""

    kind: str  # what the table calls it: conv2d, linear, matmul, relu, add, view, maxpool2d, ...
    category: str  # weighted | pool | reduce | norm | elementwise | move | dropout | unknown
    macs: int = 0
    flops: int = 0
    dot: int = 0  # the dot-product length of a weighted op (for the 2n-1 convention)


def dot_flops(macs: int, outputs: int, conv: Conventions) -> int:
    return 2 * macs if conv.dot == "2n" else 2 * macs - outputs


def op_cost(name: str, ins: list[Shape | None], out: Shape, conv: Conventions, *, args: tuple = (),
            weight_like: bool = False) -> OpCost:
    """Cost of operator ``name``: ``ins`` are the shapes of its tensor arguments in order (None for a
    non-tensor argument), ``out`` its first output's shape, ``args`` the raw arguments (for flags such as
    a convolution's ``transposed`` and ``output_mask``). ``weight_like``: the second matrix of a product
    is a parameter (a linear layer, not an activation-by-activation matmul)."""
    n_out = prod(out) if out else 1
    kind = NAMES.get(name, name)
    if name in ("convolution", "_convolution"):
        x, w = ins[0], ins[1]
        assert x is not None and w is not None
        transposed = bool(args[6]) if len(args) > 6 else False
        nd = len(w) - 2
        kind = f"conv{'transpose' if transposed else ''}{nd}d"
        # transposed: every input element scatters into C_out/groups x kernel outputs
        macs = prod(x) // x[1] * w[0] * prod(w[1:]) if transposed else n_out * prod(w[1:])
        has_bias = len(ins) > 2 and ins[2] is not None
        flops = dot_flops(macs, n_out, conv) + (n_out if conv.bias and has_bias else 0)
        return OpCost(kind, "weighted", macs, flops, prod(w[1:]))
    if name == "convolution_backward":
        grad, x, w = ins[0], ins[1], ins[2]
        assert grad is not None and x is not None and w is not None
        mask = args[10] if len(args) > 10 else (True, True, True)
        per = prod(grad) * prod(w[1:])  # the forward's MACs
        macs = per * (int(bool(mask[0])) + int(bool(mask[1])))
        flops = 2 * macs + (prod(grad) if conv.bias and mask[2] else 0)
        return OpCost("conv_backward", "weighted", macs, flops)
    if name in MATMUL:
        a, b = (ins[1], ins[2]) if name in ("addmm", "baddbmm", "addmv") else (ins[0], ins[1])
        assert a is not None and b is not None
        k = a[-1]
        macs = n_out * k
        flops = dot_flops(macs, n_out, conv)
        if name in ("addmm", "baddbmm", "addmv") and conv.bias:
            flops += n_out
        return OpCost("linear" if weight_like and name in ("addmm", "mm") else "matmul", "weighted", macs, flops, k)
    if name in POOL:
        x = ins[0]
        assert x is not None
        k = _kernel_elems(args, len(x) - 2)
        if name.endswith("_backward"):
            return OpCost(kind, "pool", 0, (prod(x) * k if conv.pooling else 0))
        per = (k - 1) if "max" in name else k
        return OpCost(kind, "pool", 0, n_out * per if conv.pooling else 0)
    if name in REDUCE:
        x = ins[0]
        n_in = prod(x) if x else 1
        if name.endswith("_backward"):
            return OpCost(kind, "reduce", 0, n_out if conv.pooling else 0)
        per = max(n_in // max(n_out, 1), 1)
        cost = n_out * (per if name in ("mean", "_adaptive_avg_pool2d", "adaptive_avg_pool2d",
                                        "adaptive_avg_pool1d") else per - 1)
        return OpCost(kind, "reduce", 0, cost if conv.pooling else 0)
    if name in NORM:
        return OpCost(kind, "norm", 0, 2 * n_out if conv.norm else 0)
    if name in ELEMENTWISE:
        return OpCost(kind, "elementwise", 0, conv.activation * n_out)
    if name in DROPOUT:
        return OpCost("dropout", "dropout")
    if name in MOVE:
        return OpCost(kind, "move")
    if name in FUSED:
        return fused_cost(name, args, conv)
    if name in QUANTIZED:
        return quantized_cost(name, args, out, conv)
    return OpCost(kind, "unknown")


def quantized_cost(name: str, args: tuple, out: Shape, conv: Conventions) -> OpCost:
    """A quantized convolution or linear layer: its packed weight (``args[1].unpack()``) gives the float
    layer's shape, and the MACs are that layer's: output elements x (C_in/groups x kernel) or in_features."""
    packed = args[1] if len(args) > 1 else None
    try:
        w, b = packed.unpack()[:2]  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - a packed format we cannot read: named as uncosted, never zero in silence
        return OpCost(name, "unknown")
    n_out = prod(out) if out else 1
    dot = prod(_shape(w)[1:])
    macs = n_out * dot
    kind = "linear" if "linear" in name else name.removeprefix("quantized.").replace("_relu", "")
    if "transpose" in name:  # every input element scatters into C_out/groups x kernel outputs (weight C_in x ...)
        x = _shape(args[0])
        macs = prod(x) * prod(_shape(w)[1:])
    flops = dot_flops(macs, n_out, conv) + (n_out if conv.bias and b is not None else 0)
    return OpCost(kind, "weighted", macs, flops, dot)


def _shape(t: object) -> Shape:
    return tuple(int(n) for n in t.shape) if hasattr(t, "shape") else ()  # type: ignore[attr-defined]


def _numel(t: object) -> int:
    return prod(_shape(t)) if t is not None and hasattr(t, "shape") else 0


def fused_cost(name: str, args: tuple, conv: Conventions) -> OpCost:
    """MACs and FLOPs of a fused kernel, from its argument shapes (``args``: the raw call arguments).

    * RNN layer (oneDNN ``mkldnn_rnn_layer``, cuDNN ``_cudnn_rnn``, MIOpen): at every time step each
      sample multiplies its input by W_ih (G*H x I) and its previous hidden state by W_hh (G*H x H), G the
      gates (LSTM 4, GRU 3, RNN 1) — the hidden state of step 1 (zeros when not given) included:
      ``MACs = T * N * (numel W_ih + numel W_hh)`` summed over the 2-d weight matrices (every layer and
      direction of a cuDNN call sees T*N positions; a projection W_hr counts the same way).
      The biases add ``T*N*(numel b_ih + numel b_hh)`` FLOPs under ``--bias-flops``.
    * scaled-dot-product attention (flash / efficient / cuDNN / CPU flash): ``S = Q K^T`` and ``S V``,
      ``MACs = B * heads * L_q * L_k * (d_qk + d_v)`` (FlopCounterMode's ``sdpa_flop_count``; a causal
      mask is not subtracted, as on the MATH path, which computes the whole product); softmax is
      ``B*heads*L_q*L_k`` element-wise FLOPs under ``--act-flops``.
    * backward of either: the gradient of each input and weight is one product as large as the forward
      one, ``MACs = 2 * forward MACs`` (FlopCounterMode's ``sdpa_backward_flop_count``); recomputation
      inside the kernel is not counted, as on the MATH path.
    * ``_native_multi_head_attention`` / ``_transformer_encoder_layer_fwd`` (the inference fast path):
      the in-projection of query, key and value, the attention above, the out-projection, and for the
      encoder layer the two feed-forward products: each ``tokens * numel(weight)`` MACs; the norms count
      under ``--norm-flops``, the residual adds, softmax and the feed-forward activation under
      ``--act-flops``.
    """
    a = list(args)
    backward = "backward" in name
    if name in RNN:
        x = _shape(a[0])
        if name.startswith("mkldnn"):  # (input, w_ih, w_hh, b_ih, b_hh, ...), backward the same order
            mats, biases = [a[1], a[2]], [a[3], a[4]]
        else:  # cuDNN / MIOpen: (input, [weights], weight_stride0, ...)
            weights = a[1] if isinstance(a[1], list | tuple) else []
            mats = [w for w in weights if len(_shape(w)) == 2]
            biases = [w for w in weights if len(_shape(w)) == 1]
        tokens = prod(x[:-1]) if len(x) >= 2 else 1
        macs = tokens * sum(_numel(w) for w in mats)
        if backward:
            return OpCost("rnn_backward", "weighted", 2 * macs, 4 * macs)
        outputs = tokens * sum(_shape(w)[0] for w in mats)
        flops = dot_flops(macs, outputs, conv) + (tokens * sum(_numel(b) for b in biases) if conv.bias else 0)
        return OpCost("rnn", "weighted", macs, flops)
    if name in ATTENTION:
        start = 1 if backward and not name.startswith("_flash") and not name.startswith("_efficient") else 0
        q, k, v = (_shape(t) for t in a[start:start + 3])
        if name.startswith(("_flash", "_efficient")):  # (B, L, heads, d)
            batch, lq, lk, d, dv = prod(q[:-3]) * q[-2], q[-3], k[-3], q[-1], v[-1]
        else:  # (B, heads, L, d)
            batch, lq, lk, d, dv = prod(q[:-2]), q[-2], k[-2], q[-1], v[-1]
        macs = batch * lq * lk * (d + dv)
        if backward:
            return OpCost("attention_backward", "weighted", 2 * macs, 4 * macs)
        flops = dot_flops(macs, batch * lq * (lk + dv), conv) + conv.activation * batch * lq * lk
        return OpCost("attention", "weighted", macs, flops, d)
    if name == "_native_multi_head_attention":
        # (query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, proj_weight, proj_bias, ...)
        q, k, v, e = _shape(a[0]), _shape(a[1]), _shape(a[2]), int(a[3])
        tq, tk, tv = prod(q[:-1]), prod(k[:-1]), prod(v[:-1])
        n, lq, lk = prod(q[:-2]), q[-2], k[-2]
        macs = (tq + tk + tv) * e * e + n * lq * lk * 2 * e + tq * e * e
        bias = (tq + tk + tv) * e + tq * e
        heads = int(a[4])
        return OpCost("attention", "weighted", macs, 2 * macs + (bias if conv.bias else 0)
                      + conv.activation * n * heads * lq * lk, e)
    # _transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias,
    #   use_gelu, norm_first, eps, norm_weight_1, norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1,
    #   ffn_bias_1, ffn_weight_2, ffn_bias_2, mask, mask_type)
    x, e, heads = _shape(a[0]), int(a[1]), int(a[2])
    tokens, n, seq = prod(x[:-1]), prod(x[:-2]), x[-2]
    hidden = _shape(a[14])[0]
    macs = tokens * (_numel(a[3]) + _numel(a[5]) + _numel(a[14]) + _numel(a[16])) + n * seq * seq * 2 * e
    bias = tokens * (_numel(a[4]) + _numel(a[6]) + _numel(a[15]) + _numel(a[17]))
    elementwise = n * heads * seq * seq + tokens * hidden + 2 * tokens * e  # softmax, activation, 2 residuals
    return OpCost("transformer_layer", "weighted", macs, 2 * macs + (bias if conv.bias else 0)
                  + conv.activation * elementwise + (2 * 2 * tokens * e if conv.norm else 0), e)


def _kernel_elems(args: tuple, nd: int) -> int:
    """Kernel elements of a pooling call: (input, kernel_size, ...) or, for a backward, (grad, input,
    kernel_size, ...); a one-number kernel applies to every one of the ``nd`` spatial axes."""
    for a in args[1:3]:
        if isinstance(a, list | tuple) and a and all(isinstance(v, int) for v in a):
            return prod(tuple(a)) if len(a) == nd else a[0] ** nd
        if isinstance(a, int) and not isinstance(a, bool):
            return a**nd
    return 1
