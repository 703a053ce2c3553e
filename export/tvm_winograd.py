"""Winograd F(m x m, 3 x 3) for TVM's CPU targets: 3x3 convolutions as two cheap transforms around a
batched matrix multiply (runs in TVM's environment, used by tvm_build).

Why: onnxruntime's MLAS runs direct convolutions at about this CPU's matmul peak, and MetaSchedule's
tuned direct convolutions did not get there (0.7x of onnxruntime's speed on the seed model, both on
two threads). Winograd's F(4x4, 3x3) does the same convolution with 4x fewer multiplies (36 per 16
outputs and channel instead of 144), and its heavy part is one matrix multiply per tile position,
which MetaSchedule tunes well (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
2016). The weights are transformed once, at compile time.

It works on channels-last (NHWC) activations, which cpu_passes() converts the model to, so every
stage runs over contiguous channels. Each convolution becomes four kernels that MetaSchedule tunes
on their own: the input transform B^T d B (padding inlined), the matrix multiply, the output
transform A^T M A, and a copy of the tiles back into the image, fused with the bias and ReLU. The
transforms are small reductions with the matrices as input buffers. TOPI's conv2d_winograd_nchw
was tried first and crashed MetaSchedule's tuning of a whole model with TVM 0.27 ("The block no
longer exists in the IRModule").

Each output differs from the direct convolution by float32 rounding only: about 1e-5 of its
magnitude for m=4 (tests/test_export.py checks it against a direct convolution).
"""

from __future__ import annotations

import numpy as np

TILE = 4  # F(4x4, 3x3): 6x6 input tiles; 6 would save a further 21% of multiplies at 4x the rounding error
MIN_IN_CHANNELS = 16  # below this (an RGB first layer) the matrix multiply is too thin to beat a direct conv


def transform_matrices(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, B, G) of Winograd F(m, 3), built by TVM's own Cook-Toom construction (the one TOPI uses)."""
    from tvm.topi.nn.winograd_util import _cook_toom_convolution, _interpolation_points

    A, B, G = _cook_toom_convolution(_interpolation_points(m + 2), m, 3)
    return np.array(A, np.float64), np.array(B, np.float64), np.array(G, np.float64)


def transform_weight(weight: np.ndarray, m: int) -> np.ndarray:
    """OIHW 3x3 weights [K, C, 3, 3] -> U [alpha * alpha, C, K] = G w G^T, one C x K matrix per tile position."""
    _, _, G = transform_matrices(m)
    U = np.einsum("ea,kcab,nb->enck", G, weight.astype(np.float64), G)
    return U.reshape((m + 2) ** 2, weight.shape[1], weight.shape[0]).astype(np.float32)


def input_transform(data, BT, m: int, H: int, W: int):
    """NHWC data [1, H, W, C] -> V [alpha * alpha, tiles, C] = B^T d B of every tile (stride m, pad 1).

    Two small reductions (rows, then columns) with B^T as an input buffer, which MetaSchedule tiles
    and vectorizes like any other reduction, over the contiguous channels."""
    from tvm import te, topi

    alpha, C = m + 2, data.shape[3]
    nH, nW = -(-H // m), -(-W // m)
    d = topi.nn.pad(data, [0, 1, 1, 0], [0, nH * m + 1 - H, nW * m + 1 - W, 0], name="wino_pad")
    a = te.reduce_axis((0, alpha), name="a")
    rows = te.compute((alpha, nH, nW * m + 2, C), lambda e, ty, x, c: te.sum(BT[e, a] * d[0, ty * m + a, x, c], axis=a),
                      name="wino_in_rows")
    b = te.reduce_axis((0, alpha), name="b")
    return te.compute((alpha * alpha, nH * nW, C), lambda en, p, c: te.sum(
        BT[en % alpha, b] * rows[en // alpha, p // nW, (p % nW) * m + b, c], axis=b), name="wino_in")


def batched_gemm(V, U):
    """M[e, p, k] = sum_c V[e, p, c] U[e, c, k]: one matrix multiply per tile position, output channels
    innermost (MetaSchedule tuned this far better here than a tiles-innermost layout)."""
    from tvm import te

    k_c = te.reduce_axis((0, V.shape[2]), name="c")
    return te.compute((V.shape[0], V.shape[1], U.shape[2]),
                      lambda en, p, k: te.sum(V[en, p, k_c] * U[en, k_c, k], axis=k_c), name="wino_gemm")


def output_transform(M, AT, m: int, nH: int, nW: int):
    """M [alpha * alpha, tiles, K] -> [nH, m, m, nW, K]: A^T M A of every tile, over contiguous channels;
    crop() puts the pixels back in image order."""
    from tvm import te

    alpha, K = m + 2, M.shape[2]
    n = te.reduce_axis((0, alpha), name="n")
    cols = te.compute((alpha, m, nH * nW, K), lambda e, j, p, k: te.sum(AT[j, n] * M[e * alpha + n, p, k], axis=n),
                      name="wino_out_cols")
    e = te.reduce_axis((0, alpha), name="e")
    return te.compute((nH, m, m, nW, K), lambda ty, i, j, tx, k: te.sum(
        AT[i, e] * cols[e, j, ty * nW + tx, k], axis=e), name="wino_out")


def crop(tiles, H: int, W: int):
    """[nH, m, m, nW, K] tiles -> the NHWC image [1, H, W, K]; a copy that fuses with the bias and ReLU after it."""
    from tvm import te

    _, m, _, _, K = tiles.shape
    return te.compute((1, H, W, K), lambda _, y, x, k: tiles[y // m, y % m, x % m, x // m, k], name="wino_crop")


def _eligible(call, min_in_channels: int) -> bool:
    """A float32, batch-1 NHWC 3x3 convolution, stride 1, padding 1, constant OHWI weights."""
    import tvm

    a, (data, weight) = call.attrs, call.args
    layouts = (str(a.data_layout), str(a.kernel_layout), str(a.out_layout))
    if layouts != ("NHWC", "OHWI", "NHWC") or not isinstance(weight, tvm.ir.expr.Constant):
        return False
    ints = lambda values: [int(v) for v in values]
    _, kh, kw, c = ints(weight.ty.shape)
    return (a.groups == 1 and ints(a.strides) == [1, 1]
            and ints(a.dilation) == [1, 1] and ints(a.padding) == [1, 1, 1, 1] and (kh, kw) == (3, 3)
            and c >= min_in_channels and ints(data.ty.shape)[0] == 1 and data.ty.dtype == "float32"
            and str(a.out_dtype or "float32") == "float32")


def legalize(m: int = TILE, min_in_channels: int = MIN_IN_CHANNELS, lowered: list | None = None):
    """relax.transform.LegalizeOps that lowers eligible (NHWC) conv2d calls to Winograd and the rest as
    usual. The shape of each convolution it lowers, [C, K, H, W], is appended to `lowered`."""
    import tvm
    from tvm import relax

    default = tvm.ir.Op.get("relax.nn.conv2d").get_attr("FLegalize")

    def conv2d(bb, call):
        if not _eligible(call, min_in_channels):
            return default(bb, call)
        data, weight = call.args
        _, H, W, C = [int(v) for v in data.ty.shape]
        w = weight.value.numpy().transpose(0, 3, 1, 2)  # OHWI -> OIHW
        if lowered is not None:
            lowered.append([C, w.shape[0], H, W])
        A, B, _ = transform_matrices(m)
        BT, AT = relax.const(B.T.astype(np.float32)), relax.const(A.T.astype(np.float32))
        U = relax.const(transform_weight(w, m))
        V = bb.emit(bb.call_te(input_transform, data, BT, m, H, W, primfunc_name_hint="winograd_input"))
        M = bb.emit(bb.call_te(batched_gemm, V, U, primfunc_name_hint="winograd_gemm"))
        nH, nW = -(-H // m), -(-W // m)
        tiles = bb.emit(bb.call_te(output_transform, M, AT, m, nH, nW, primfunc_name_hint="winograd_output"))
        return bb.call_te(crop, tiles, H, W, primfunc_name_hint="winograd_crop")

    return relax.transform.LegalizeOps(customize_legalize_map={"relax.nn.conv2d": conv2d})


def cpu_passes(lowered: list | None = None) -> list:
    """What a tuned CPU build runs before fusion: activations channels-last (NHWC), so that every
    Winograd stage runs over contiguous channels, then the lowering."""
    from tvm import relax

    return [relax.transform.ConvertLayout({"relax.nn.conv2d": ["NHWC", "OHWI"]}), relax.transform.FoldConstant(),
            legalize(lowered=lowered)]


def check_against_direct_convolution() -> dict:
    """Three convolutions (one that qualifies, one strided, one with 8 input channels, at 13 x 11 so tiles
    are partial) compiled with and without the lowering, against a float64 direct convolution: which
    convolutions were lowered (NCHW: none; NHWC: the first) and the largest difference. The test suite
    runs it in TVM's environment."""
    import onnx
    import tvm
    from onnx import helper, numpy_helper
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((24, 16, 3, 3)).astype("float32") * 0.2   # 16 -> 24 channels: lowered
    w2 = rng.standard_normal((8, 24, 3, 3)).astype("float32") * 0.2    # stride 2: left as a direct conv
    w3 = rng.standard_normal((5, 8, 3, 3)).astype("float32") * 0.2     # 8 input channels: left as a direct conv
    nodes = [helper.make_node("Conv", ["input", "w1"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["a", "w2"], ["b"], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Conv", ["b", "w3"], ["out"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 16, 13, 11])],
                              [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, n) for w, n in ((w1, "w1"), (w2, "w2"), (w3, "w3"))])
    nchw, nhwc, outputs = [], [], []
    x = rng.standard_normal((1, 16, 13, 11)).astype("float32")
    for passes in ([legalize(lowered=nchw)], cpu_passes(lowered=nhwc)):
        mod = tvm.transform.Sequential(passes)(from_onnx(helper.make_model(graph), keep_params_in_input=False))
        out = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())["main"](tvm.runtime.tensor(x))
        outputs.append(out.numpy() if hasattr(out, "numpy") else out[0].numpy())

    def conv(x, w, stride=1):  # direct convolution, pad 1, in float64
        xp = np.pad(x[0].astype(np.float64), ((0, 0), (1, 1), (1, 1)))
        h, wd = (x.shape[2] - 1) // stride + 1, (x.shape[3] - 1) // stride + 1
        win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))[:, ::stride, ::stride][:, :h, :wd]
        return np.einsum("chwab,kcab->khw", win, w)[None]

    expected = conv(conv(conv(x, w1), w2, 2), w3)
    return {"nchw": nchw, "nhwc": nhwc, "max_abs_diff": [float(np.abs(out - expected).max()) for out in outputs],
            "scale": float(np.abs(expected).max()), "shapes": [list(out.shape) for out in outputs]}
