"""Self-attention head by head (`export.sliced_attention`): where it is used, and that it computes
diffusers' attention at every batch and image size the graph is run at."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from export import sliced_attention
from export.families import FAMILIES, reduced


def test_only_sd21_at_768_needs_it():
    """The rule at full size, from the configs alone (meta device: no memory)."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unets = {name: UNet2DConditionModel(**f.unet) for name, f in FAMILIES.items()}
    sizes = {name: sliced_attention.largest_scores_bytes(u, FAMILIES[name].unet["sample_size"])
             for name, u in unets.items()}
    # 2 (guidance) × 5 heads × (96²)² × 4 bytes at SD 2.1's first level; SD 1.5 has 8 heads at 64².
    assert sizes["sd2.1"] == 2 * 5 * 9216**2 * 4
    assert sizes["sd1.5"] == 2 * 8 * 4096**2 * 4
    assert sizes["sd-turbo"] == sizes["sd2.1-base"] == 2 * 5 * 4096**2 * 4
    wanted = {name: sliced_attention.wanted(u, FAMILIES[name].unet["sample_size"]) for name, u in unets.items()}
    assert wanted == {"sd-turbo": False, "sd2.1-base": False, "sd2.1": True, "sd1.5": False}
    assert sliced_attention.wanted(unets["sd-turbo"], 64, "yes") and not sliced_attention.wanted(unets["sd2.1"], 96, "no")
    with pytest.raises(ValueError, match="auto, yes or no"):
        sliced_attention.wanted(unets["sd2.1"], 96, "maybe")


@pytest.fixture(scope="module")
def sd21_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(**reduced(FAMILIES["sd2.1"]).unet).eval()


def _inputs(batch, height, width, context_dim, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 4, height, width, generator=g), torch.tensor(500.0),
            torch.randn(batch, 77, context_dim, generator=g))


@pytest.fixture(scope="module")
def sliced_graph(sd21_unet, tmp_path_factory):
    """The reduced SD 2.1 UNet exported as convert exports it at 768², self-attention per head;
    and diffusers' own outputs at several shapes, computed before the slicing."""
    import copy

    import optimum.exporters.onnx.model_configs  # noqa: F401
    from optimum.exporters.tasks import TasksManager

    from export.attention import add_to_file
    from export.convert import export_fp32

    shapes = [(2, 16, 16), (1, 16, 16), (2, 16, 8), (1, 8, 24)]  # multiples of 8: three halvings
    dim = sd21_unet.config.cross_attention_dim
    with torch.no_grad():
        expected = {s: sd21_unet(*_inputs(*s, dim)).sample.numpy() for s in shapes}
    unet = copy.deepcopy(sd21_unet)
    assert sliced_attention.slice_self_attention(unet) == len(sliced_attention.self_attention_layers(unet)) == 16
    config = TasksManager.get_exporter_config_constructor(model=unet, exporter="onnx", library_name="diffusers",
                                                          task="semantic-segmentation", model_type="unet-2d-condition")(
        unet.config, int_dtype="int64", float_dtype="fp32")
    path = export_fp32(unet, config, tmp_path_factory.mktemp("sliced") / "unet" / "model.onnx")
    add_to_file(path)
    return path, expected


def test_sliced_graph_is_diffusers_attention_at_any_batch_and_size(sliced_graph, sd21_unet):
    path, expected = sliced_graph
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dim = sd21_unet.config.cross_attention_dim
    for shape, want in expected.items():
        sample, timestep, context = _inputs(*shape, dim)
        got, maps = session.run(["out_sample", "attention_maps"], {
            "sample": sample.numpy(), "timestep": timestep.numpy(), "encoder_hidden_states": context.numpy()})
        assert got.shape == want.shape, shape
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max(), shape
        assert maps.shape == (shape[0], 77, shape[1], shape[2])  # the cross-attention maps are still there


def test_one_softmax_per_head(sliced_graph, sd21_unet):
    """The slicing is in the graph: each self-attention layer has one Softmax per head (heads 1, 2, 4, 4
    by level in the reduced config), each cross-attention layer still one."""
    import onnx

    graph = onnx.load(str(sliced_graph[0]), load_external_data=False).graph
    softmax = [n.name for n in graph.node if n.op_type == "Softmax"]
    heads = sum(a.heads for a in sliced_attention.self_attention_layers(sd21_unet).values())
    assert len([n for n in softmax if "/attn1/" in n]) == heads
    assert len([n for n in softmax if "/attn2/" in n]) == 16


def test_it_refuses_what_it_does_not_compute(sd21_unet):
    attn = next(iter(sliced_attention.self_attention_layers(sd21_unet).values()))
    hidden = torch.randn(1, 4, attn.query_dim)
    with pytest.raises(ValueError, match="plain self-attention"):
        sliced_attention.HeadSlicedSelfAttention()(attn, hidden, encoder_hidden_states=hidden)
