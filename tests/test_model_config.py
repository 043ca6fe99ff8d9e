"""ModelConfig presets, validation and the parameter counts of paper Table 5."""

from __future__ import annotations

import pytest

from gnm.model import GNM, PRESETS, ModelConfig, count_parameters

# Paper Table 5: GNM has 2.9M parameters on the MNIST datasets and 8.6M on Arrow Room.
PAPER_PARAMS = {"mnist": 2.9e6, "arrow": 8.6e6}


@pytest.mark.parametrize("preset", ["mnist", "arrow"])
def test_parameter_count_within_10_percent_of_paper(preset: str) -> None:
    counts = count_parameters(GNM(PRESETS[preset]))
    print(f"{preset}: {counts}")
    assert counts["total"] == pytest.approx(PAPER_PARAMS[preset], rel=0.10)
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_component_counts_follow_the_config() -> None:
    mnist = count_parameters(GNM(PRESETS["mnist"]))
    arrow = count_parameters(GNM(PRESETS["arrow"]))
    assert mnist["background"] == 0 and arrow["background"] > 0
    assert set(mnist) == {"encoder", "structdraw", "heads", "glimpse", "background", "total"}
    # heads: two 1x1 blocks (64 -> 64 -> 64) + one 1x1 output conv of 1 + 8 + 2 + 2 * 20 channels
    assert mnist["heads"] == 2 * (64 * 64 + 64 + 2 * 64) + 64 * 51 + 51


def test_arrow_preset_values() -> None:
    cfg = ModelConfig.arrow()
    assert cfg.channels == 3 and cfg.enc_channels == (16, 16, 32, 32, 64, 64, 128, 128, 128)
    assert cfg.head_hidden == 128 and cfg.z_what_dim == 64 and cfg.use_background
    assert cfg.glimpse_size == 64 and cfg.glimpse_alpha and cfg.glimpse_out_channels == 4
    assert cfg.draw_hidden == 128 and cfg.dec_mlp == (512, 1024, 2048) and cfg.scale_mean == -1.5
    assert ModelConfig.arrow(draw_steps=8).draw_steps == 8


def test_lists_become_tuples_and_round_trip() -> None:
    cfg = ModelConfig.from_dict({"enc_channels": [16, 16, 32, 32, 64, 64, 64, 64, 64],
                                 "where_prior_std": [0.1, 0.3, 1, 1]})
    assert cfg == ModelConfig()
    assert ModelConfig.from_dict(PRESETS["arrow"].to_dict()) == PRESETS["arrow"]
    hash(cfg)  # frozen and hashable


@pytest.mark.parametrize("changes, message", [
    ({"global_prior": "vae"}, "global_prior"),
    ({"enc_strides": (2, 1, 2, 1, 2, 1, 2, 1, 1)}, "grid"),
    ({"glimpse_upscales": (4, 2, 2, 2, 2, 1)}, "glimpse_size"),
    ({"use_background": True}, "glimpse_alpha"),
    ({"dec_mlp": (512, 512, 1000)}, "multiple of grid"),
    ({"use_interaction_mlp": False, "z_g_step_dim": 20}, "NoMLP"),
])
def test_invalid_configs_are_rejected(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**changes)


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"z_wat_dim": 3})
