"""Structured pruning: aligned kept counts, dependent layers pruned together, the pruned network equal to
the original with the pruned channels zeroed, and a checkpoint that round-trips through the command."""

from __future__ import annotations

import pytest
import torch

from mixq_nn import checkpoint, models, prune


def _trained_like(name, shape, **opts):
    """A model with LSQ weight steps and BN statistics from a few random batches (eval mode)."""
    torch.manual_seed(0)
    model = models.build(name, input_shape=shape, weight_mode="lsq", **opts)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randint(0, 256, (8, *shape)) / 256)
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval()


@pytest.mark.parametrize("sparsity,align", [(0.5, 8), (0.3, 8), (0.7, 4), (0.25, 16)])
def test_kept_counts_are_aligned(sparsity, align):
    model = _trained_like("CNVw2a2", (1, 32, 32))
    plan = prune.plan_pruning(model, (1, 32, 32), sparsity, align)
    prunable = [g for g in plan.groups.values() if not g.frozen]
    assert len(prunable) == 8
    for g in prunable:
        k = len(plan.keep[g.gid])
        assert k % align == 0 and align <= k <= g.size
        assert abs(k - g.size * (1 - sparsity)) <= align / 2
    assert [g.frozen for g in plan.groups.values() if g.frozen] == ["the network's output"]


def test_keep_is_the_largest_l1_norm():
    model = _trained_like("CNVw2a2", (1, 32, 32))
    plan = prune.plan_pruning(model, (1, 32, 32), 0.5, 8)
    conv = models.quantized_layers(model)[0]
    gid = plan.out_channels[next(n for n, m in model.named_modules() if m is conv)][0][0]
    norms = conv.weight.detach().abs().sum(dim=(1, 2, 3))
    kept = plan.keep[gid]
    dropped = [i for i in range(64) if i not in kept]
    assert norms[kept].min() >= norms[dropped].max()


CASES = [("CNVw2a2", (1, 32, 32), {}), ("VGGtiny", (3, 16, 16), {}), ("ResNet8", (3, 16, 16), {}),
         ("ResNet8Leaky", (3, 16, 16), {"act_mode": "lsq"})]


@pytest.mark.parametrize("name,shape,opts", CASES)
def test_pruned_equals_the_original_with_channels_zeroed(name, shape, opts):
    model = _trained_like(name, shape, **opts)
    plan = prune.plan_pruning(model, shape, 0.5, 8)
    widths = prune.pruned_widths(model, plan)
    pruned = models.build(name, input_shape=shape, weight_mode="lsq", channels=widths, **opts)
    prune.apply_plan(model, pruned, plan).eval()
    zeroed = prune.zero_pruned_channels(model, plan).eval()
    x = torch.randint(0, 256, (4, *shape)) / 256
    with torch.no_grad():
        out, ref, orig = pruned(x), zeroed(x), model(x)
    assert torch.allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out, orig, atol=1e-3)                # pruning did change something
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())


def test_residual_branches_keep_the_same_channels():
    model = _trained_like("ResNet8", (3, 16, 16))
    plan = prune.plan_pruning(model, (3, 16, 16), 0.5, 8)
    out = plan.out_channels
    assert out["stem.0"] == out["blocks.0.conv2"]                    # identity shortcut
    assert out["blocks.1.conv2"] == out["blocks.1.shortcut"] == out["blocks.1.bn2"]
    assert out["blocks.2.conv2"] == out["blocks.2.shortcut"]
    assert prune.pruned_widths(model, plan) == [8, 8, 8, 16, 16, 16, 32, 32, 32]


def test_depthwise_and_concat_follow_their_groups():
    sky = models.build("SkyNet", input_shape=(3, 16, 32)).eval()
    plan = prune.plan_pruning(sky, (3, 16, 32), 0.5, 8)
    dw, pw = "bundles.3.0", "bundles.1.0"                             # dw conv after the 48-ch pointwise (and pool)
    assert plan.out_channels[dw] == plan.out_channels[pw] and len(plan.kept(plan.out_channels[dw])) == 24
    yolo = models.build("TinyYOLOv3", input_shape=(3, 32, 32)).eval()
    plan = prune.plan_pruning(yolo, (3, 32, 32), 0.5, 8)
    ins = plan.in_channels["conv8.0"]
    assert ins[:128] == plan.out_channels["conv7.0"] and ins[128:] == plan.out_channels["backbone.8.0"]
    bypass = models.build("UltraNetBypass", input_shape=(3, 32, 64)).eval()
    plan = prune.plan_pruning(bypass, (3, 32, 64), 0.5, 8)
    frozen = {g.producers[0]: g.frozen for g in plan.groups.values() if g.frozen}
    assert "Reorg" in frozen["conv3.0"]                              # the reorg'd map stays whole


def test_command_writes_a_smaller_checkpoint_that_loads(tmp_path, capsys):
    shape = (1, 32, 32)
    model = _trained_like("CNVw2a2", shape)
    src = checkpoint.save(tmp_path / "cnv.pt", model, name="CNVw2a2", bitw=[2] * 9, bita=[8] + [2] * 8,
                          input_shape=shape, model_args={"weight_mode": "lsq"},
                          extra={"data": {"dataset": "digits", "seed": 0}})
    out = tmp_path / "pruned.pt"
    assert prune.main([str(src), "--sparsity", "0.5", "--align", "8", "--out", str(out), "--limit", "64",
                       "--finetune-epochs", "1", "--batch-size", "32", "-q"]) == 0
    assert "wrote" in capsys.readouterr().out
    loaded = checkpoint.load(out)
    assert loaded.model_args["channels"] == [32, 32, 64, 64, 128, 128, 256, 256]
    assert out.stat().st_size < src.stat().st_size / 2
    info = loaded.meta["extra"]["pruning"]
    assert info["sparsity"] == 0.5 and info["macs"][1] < info["macs"][0] and len(info["history"]) == 1
    x = torch.rand(2, *shape)
    again = models.build("CNVw2a2", input_shape=shape, weight_mode="lsq", channels=loaded.model_args["channels"])
    again.load_state_dict(loaded.state_dict)
    assert torch.equal(again.eval()(x), loaded.model(x))


def test_bad_options_are_clear_errors(tmp_path, capsys):
    shape = (3, 32, 64)
    ultra = models.build("UltraNet", input_shape=shape).eval()
    src = checkpoint.save(tmp_path / "u.pt", ultra, name="UltraNet", bitw=[4] * 9, bita=[8] + [4] * 8,
                          input_shape=shape)
    cnv = checkpoint.save(tmp_path / "c.pt", _trained_like("CNVw2a2", (1, 32, 32)), name="CNVw2a2",
                          bitw=[2] * 9, bita=[8] + [2] * 8, input_shape=(1, 32, 32),
                          model_args={"weight_mode": "lsq"})
    out = str(tmp_path / "p.pt")
    cases = [([str(cnv), "--sparsity", "1", "--out", out], "--sparsity 1: must be below 1"),
             ([str(cnv), "--sparsity", "-0.1", "--out", out], "--sparsity -0.1: must be at least 0"),
             ([str(cnv), "--sparsity", "0.5", "--align", "0", "--out", out], "--align 0: must be at least 1"),
             ([str(tmp_path / "none.pt"), "--sparsity", "0.5", "--out", out], "none.pt"),
             ([str(src), "--sparsity", "0.5", "--out", out], "model UltraNet has no 'channels' option")]
    for argv, message in cases:
        assert prune.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "p.pt").exists()
