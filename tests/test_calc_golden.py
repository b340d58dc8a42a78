"""Golden numbers a person can check by hand: LeNet-5 and a stride-2 TF-SAME CNN. Pure Python, no torch."""

from __future__ import annotations

import pytest

from ablab.calc import Conventions
from ablab.calc.memory import human_bytes
from ablab.calc.shapes import same_padding
from ablab.sizeup import summary
from ablab.spec import SpecError

# 3x200x300 RGB image; three stride-2 SAME convs; this is the README's second example
SAME_CNN = ("conv(16,3,s=2,pad=same) relu conv(32,3,s=2,pad=same) relu conv(64,3,s=2,pad=same) relu "
            "flatten linear(10)")


def test_lenet5_parameters_by_hand() -> None:
    s = summary("lenet5")
    # conv1 6*1*5*5+6, conv2 16*6*5*5+16, fc 400*120+120, 120*84+84, 84*10+10
    assert [r.params for r in s.layers if r.params] == [156, 2_416, 48_120, 10_164, 850]
    assert s.totals.params == 61_706
    assert s.totals.trainable_params == 61_706


def test_lenet5_macs_and_flops_by_hand() -> None:
    s = summary("lenet5")
    # conv1: 6*28*28 outputs * 1*5*5 = 117,600; conv2: 16*10*10 * 6*5*5 = 240,000;
    # fc: 400*120 + 120*84 + 84*10 = 48,000 + 10,080 + 840
    assert [r.macs for r in s.layers if r.macs] == [117_600, 240_000, 48_000, 10_080, 840]
    assert s.totals.macs == 416_520
    assert s.totals.flops == 833_040  # default: 2 FLOPs per MAC


def test_lenet5_shapes_and_receptive_field() -> None:
    s = summary("lenet5")
    assert [r.output_shape for r in s.layers[:7]] == [
        (6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5), (400,)]
    # 5; 5+1*1 = 6 (stride 2); 6+4*2 = 14; 14+1*2 = 16 (stride 4); starts at -2 (conv1's padding)
    fields = [r.receptive_field for r in s.layers]
    assert [f.size for f in fields[:6] if f] == [(5, 5), (5, 5), (6, 6), (14, 14), (14, 14), (16, 16)]
    assert fields[5] is not None and fields[5].stride == (4, 4) and fields[5].start == (-2, -2)
    assert fields[6] is None and fields[-1] is None  # flatten and after: the whole input


def test_lenet5_memory_by_hand() -> None:
    s = summary("lenet5", optimizer="adam")
    m = s.totals.memory
    # outputs: 4704+4704+1176+1600+1600+400+400+120+120+84+84+10 = 15,002 floats
    assert m.activation_bytes == 15_002 * 4 == 60_008
    assert m.input_bytes == 784 * 4
    assert m.param_bytes == 61_706 * 4
    # largest adjacent pair: tanh_1, 4704 in + 4704 out
    assert m.peak_layer == "tanh_1"
    assert m.inference_peak_bytes == (4_704 + 4_704) * 4 + 246_824 == 284_456
    # kept for backward: tanh outputs 4704+1600+120+84, pooled maps 1176+400 (conv/linear inputs) = 8,084 floats
    assert m.kept_bytes == 8_084 * 4 == 32_336
    # (input + kept) + params + grads + Adam's 2 moments
    assert m.training_bytes == (784 + 8_084) * 4 + 246_824 * (1 + 1 + 2) == 1_022_768
    assert summary("lenet5", optimizer="momentum").totals.memory.optimizer_bytes == 246_824
    assert summary("lenet5").totals.memory.training_bytes == 529_120


def test_flop_conventions_on_lenet5() -> None:
    outputs = 4_704 + 1_600 + 120 + 84 + 10  # output elements of the five weighted layers
    assert summary("lenet5", conventions=Conventions(dot="2n-1")).totals.flops == 833_040 - outputs
    # 2n-1 multiply/adds + 1 bias add = 2n again
    assert summary("lenet5", conventions=Conventions(dot="2n-1", bias=True)).totals.flops == 833_040
    assert summary("lenet5", conventions=Conventions(bias=True)).totals.flops == 833_040 + outputs
    # average pooling 2x2: 3 adds + 1 divide per output: (1,176 + 400) * 4
    assert summary("lenet5", conventions=Conventions(pooling=True)).totals.flops == 833_040 + 1_576 * 4
    # tanh on 4,704 + 1,600 + 120 + 84 elements, 3 FLOPs each
    assert summary("lenet5", conventions=Conventions(activation=3)).totals.flops == 833_040 + 3 * 6_508
    # max pooling: 3 comparisons per output
    modern = summary("lenet5-modern", conventions=Conventions(pooling=True))
    assert modern.totals.flops == 833_040 + 1_576 * 3
    assert summary("lenet5", conventions=Conventions(pooling=True)).totals.macs == 416_520  # MACs never change


def test_batchnorm_params_buffers_and_norm_flops() -> None:
    s = summary("conv(8,3,bias=false) bn relu", (3, 10, 10), conventions=Conventions(norm=True))
    bn = s["batchnorm_1"]
    assert bn.params == 16 and bn.buffers == 17  # gamma, beta; running mean, var + int64 step counter
    assert bn.flops == 2 * 8 * 8 * 8
    assert s.totals.memory.param_bytes == (8 * 27 + 16 + 16) * 4 + 8


def test_same_padding_by_hand() -> None:
    # out = ceil(200/2) = 100, total pad = (100-1)*2 + 3 - 200 = 1 -> the extra pixel after
    assert same_padding(200, 3, 2) == (0, 1)
    assert same_padding(75, 3, 2) == (1, 1)  # out 38: (38-1)*2 + 3 - 75 = 2
    assert same_padding(28, 5, 1) == (2, 2)
    assert same_padding(10, 1, 3) == (0, 0)


def test_stride2_same_cnn_by_hand() -> None:
    s = summary(SAME_CNN, "3x200x300", batch=50, optimizer="adam")
    convs = [r for r in s.layers if r.kind == "conv2d"]
    assert [r.output_shape for r in convs] == [(16, 100, 150), (32, 50, 75), (64, 25, 38)]
    # params: 16*3*9+16, 32*16*9+32, 64*32*9+64, 64*25*38*10+10
    assert [r.params for r in s.layers if r.params] == [448, 4_640, 18_496, 608_010]
    assert s.totals.params == 631_594
    # MACs per image: 16*100*150*27, 32*50*75*144, 64*25*38*288, 60,800*10; times batch 50
    per_image = 6_480_000 + 17_280_000 + 17_510_400 + 608_000
    assert s.totals.macs == 50 * per_image == 50 * 41_878_400
    # receptive field 3 -> 3+2*2 = 7 -> 7+2*4 = 15, stride 8; the third conv pads W by (1,1): start -4
    f = convs[2].receptive_field
    assert f is not None and f.size == (15, 15) and f.stride == (8, 8) and f.start == (0, -4)
    m = s.totals.memory
    # layer outputs: 240,000*2 + 120,000*2 + 60,800*3 + 10 floats per image
    assert m.activation_bytes == 902_410 * 50 * 4 == 180_482_000
    # kept for backward: the input (conv 1 saves it) + each ReLU's output (the next conv's input; the last one
    # is the linear layer's input through the flatten view): 180,000 + 240,000 + 120,000 + 60,800 per image
    assert m.saved_bytes == (180_000 + 420_800) * 50 * 4 == 120_160_000
    # + params, grads, 2 Adam moments: 631,594 * 4 B each
    assert m.training_bytes == 120_160_000 + 4 * 631_594 * 4 == 130_265_504
    # largest adjacent pair: relu_1, 240,000 in + 240,000 out, per image
    assert m.inference_peak_bytes == 480_000 * 50 * 4 + 631_594 * 4 == 98_526_376
    assert human_bytes(m.training_bytes) == "124.23 MiB"


def test_explain_shows_the_worked_formulas() -> None:
    text = summary(SAME_CNN, "3x200x300").explain()
    assert "H: SAME: out = ceil(200/2) = 100; padding = max((100-1)*2 + 3 - 200, 0) = 1 -> (0 before, 1 after)" \
        in text
    assert "W: SAME: out = ceil(75/2) = 38; padding = max((38-1)*2 + 3 - 75, 0) = 2 -> (1 before, 1 after)" in text
    assert "MACs = 64*25*38 outputs * (32/1)*3*3 per output = 60,800 * 288 = 17,510,400" in text
    assert "receptive field: 7 + (3-1)*4 = 15, 7 + (3-1)*4 = 15; effective stride: 4*2 = 8, 4*2 = 8" in text
    lenet = summary("lenet5").explain()
    assert "params = 6*(1/1)*5*5 weights + 6 bias = 156" in lenet
    assert "MACs = 156 + 2,416" not in lenet  # totals list params and MACs separately
    assert "params = 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706" in lenet
    assert "MACs = 117,600 + 240,000 + 48,000 + 10,080 + 840 = 416,520" in lenet


def test_mlp_preset_and_grouped_dilated_conv() -> None:
    s = summary("mlp:256,10", (784,))
    assert s.totals.params == 784 * 256 + 256 + 256 * 10 + 10 == 203_530
    assert s.totals.macs == 784 * 256 + 256 * 10
    assert all(r.receptive_field is None for r in s.layers)
    g = summary("conv(8,3,groups=4,dilation=2,bias=false)", (4, 9, 9))
    # each output sees 4/4 = 1 channel x 3x3 taps; dilated kernel 5x5 -> 5x5 output
    assert g.layers[0].output_shape == (8, 5, 5)
    assert g.totals.params == 8 * 1 * 9 and g.totals.macs == 8 * 25 * 9
    assert g.layers[0].receptive_field is not None and g.layers[0].receptive_field.size == (5, 5)


def test_to_dict_schema() -> None:
    d = summary("lenet5", batch=2).to_dict()
    assert set(d["layers"][0]) >= {"name", "kind", "output_shape", "params", "macs", "flops",
                                   "activation_bytes", "receptive_field"}
    assert set(d["totals"]) >= {"params", "trainable_params", "macs", "flops", "activation_bytes",
                                "inference_peak_bytes", "training_bytes"}
    assert d["layers"][0]["receptive_field"] == {"size": [5, 5], "stride": [1, 1], "start": [-2, -2]}
    assert d["totals"]["macs"] == 2 * 416_520 and d["totals"]["params"] == 61_706
    assert d["totals"]["activation_bytes"] == 2 * 60_008
    t = d["totals"]["training"]
    assert sum(t.values()) == d["totals"]["training_bytes"]


def test_bad_arguments_are_user_errors() -> None:
    with pytest.raises(SpecError, match="dtype"):
        summary("lenet5", dtype="int3")
    with pytest.raises(SpecError, match="optimizer"):
        summary("lenet5", optimizer="lbfgs")
    with pytest.raises(SpecError, match="dot"):
        Conventions(dot="n")
    with pytest.raises(SpecError, match=r"layer 4 \(conv2d_2\).*5x5.*input 6x4x4"):
        summary("lenet5", (1, 8, 8))  # 8 -> 8 -> 4 -> conv 5x5 on 4x4: nothing left
