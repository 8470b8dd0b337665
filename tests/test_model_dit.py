"""NextFrameDiT: block-causality, windows, backends, files, sizes, checkpointing, learning."""

import json

import pytest
import torch

from gameworld.models.dit import DEFAULT_LATENT, MODEL_SIZES, NextFrameDiT
from gameworld.models.rope import apply_rope, rope_rotations

TINY = dict(
    in_channels=4,
    latent_height=4,
    latent_width=6,
    action_dim=5,
    patch_size=2,
    hidden_size=64,
    depth=2,
    num_heads=2,
)


def random_model(seed: int = 0, **overrides) -> NextFrameDiT:
    """A tiny model with its zero-initialised layers (adaLN, output) randomised: outputs depend on inputs."""
    torch.manual_seed(seed)
    model = NextFrameDiT(**{**TINY, **overrides})
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return model.eval()


def random_inputs(model: NextFrameDiT, batch: int, frames: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    latents = torch.randn(batch, frames, cfg.in_channels, cfg.latent_height, cfg.latent_width, generator=g)
    return (
        latents,
        torch.rand(batch, frames, generator=g),
        torch.randn(batch, frames, cfg.action_dim, generator=g),
    )


def frames_changed(a: torch.Tensor, b: torch.Tensor) -> list[bool]:
    """Per frame of [B, T, ...] outputs: did anything change?"""
    return [(a[:, i] - b[:, i]).abs().max().item() > 1e-5 for i in range(a.shape[1])]


@torch.no_grad()
@pytest.mark.parametrize("previous", [False, True])
@pytest.mark.parametrize("what", ["latent", "action", "noise_level"])
def test_changing_frame_k_leaves_earlier_frames_unchanged(what, previous):
    model = random_model(previous_frame_input=previous)
    latents, levels, actions = random_inputs(model, batch=2, frames=5)
    before = model(latents, levels, actions)
    k = 2
    if what == "latent":
        latents = latents.clone()
        latents[:, k] += 1.0
    elif what == "action":
        actions = actions.clone()
        actions[:, k] = 0.0
    else:
        levels = levels.clone()
        levels[:, k] = 1.0 - levels[:, k]
    after = model(latents, levels, actions)
    assert frames_changed(before, after) == [False, False, True, True, True]


@torch.no_grad()
def test_sliding_window_and_sink_frames():
    # one layer: with more, the receptive field grows by a window per layer (as in any sliding window)
    windowed = random_model(max_frames=3, depth=1)
    latents, levels, actions = random_inputs(windowed, batch=1, frames=7)
    changed = latents.clone()
    changed[:, 1] += 1.0
    # frame 1 is seen by frames 1, 2, 3 only (window of 3 frames), not by 4..6
    assert frames_changed(windowed(latents, levels, actions), windowed(changed, levels, actions)) == [
        False,
        True,
        True,
        True,
        False,
        False,
        False,
    ]

    sinked = random_model(max_frames=4, sink_frames=1, depth=1)
    changed = latents.clone()
    changed[:, 0] += 1.0  # the sink frame: seen by every later frame
    assert all(frames_changed(sinked(latents, levels, actions), sinked(changed, levels, actions)))
    changed = latents.clone()
    changed[:, 2] += 1.0  # recent window = 3 frames: frame 2 reaches frames 2, 3, 4
    assert frames_changed(sinked(latents, levels, actions), sinked(changed, levels, actions)) == [
        False,
        False,
        True,
        True,
        True,
        False,
        False,
    ]


@torch.no_grad()
@pytest.mark.parametrize("backend", ["flex", "xformers"])
def test_attention_backends_agree_with_sdpa(backend):
    if backend == "xformers":
        pytest.importorskip("xformers")
    model = random_model(max_frames=4, sink_frames=1)
    latents, levels, actions = random_inputs(model, batch=2, frames=6)
    reference = model(latents, levels, actions)
    cache = model.new_cache(2)
    stepped_reference = [
        model.forward_step(
            latents[:, i : i + 1], levels[:, i : i + 1], actions[:, i : i + 1], cache, write=True
        )
        for i in range(6)
    ]
    model.set_attention_backend(backend)
    assert (model(latents, levels, actions) - reference).abs().max() < 1e-5
    cache = model.new_cache(2)
    for i in range(6):
        out = model.forward_step(
            latents[:, i : i + 1], levels[:, i : i + 1], actions[:, i : i + 1], cache, write=True
        )
        assert (out - stepped_reference[i]).abs().max() < 1e-5


def test_unknown_backend_is_refused():
    model = random_model()
    with pytest.raises(ValueError, match="unknown attention backend 'cuda'"):
        model.set_attention_backend("cuda")
    with pytest.raises(ValueError, match="unknown attention backend"):
        NextFrameDiT(**TINY, attention_backend="magic")


@torch.no_grad()
def test_save_and_load_give_identical_outputs(tmp_path):
    model = random_model(max_frames=5, sink_frames=1)
    model.save_pretrained(tmp_path / "world_model")
    files = sorted(p.name for p in (tmp_path / "world_model").iterdir())
    assert files == ["config.json", "diffusion_pytorch_model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["world_model"]  # no staging directory left behind
    loaded = NextFrameDiT.from_pretrained(tmp_path / "world_model").eval()
    assert loaded.config.sink_frames == 1 and loaded.config.max_frames == 5
    latents, levels, actions = random_inputs(model, batch=1, frames=4)
    assert torch.equal(model(latents, levels, actions), loaded(latents, levels, actions))
    model.save_pretrained(tmp_path / "world_model")  # overwriting an existing directory works too
    config = json.loads((tmp_path / "world_model" / "config.json").read_text())
    assert config["_class_name"] == "NextFrameDiT"


def test_loading_a_missing_directory_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.*not a NextFrameDiT directory"):
        NextFrameDiT.from_pretrained(tmp_path / "nowhere")


@pytest.mark.parametrize("size", sorted(MODEL_SIZES))
def test_named_sizes_have_their_parameter_counts(size):
    with torch.device("meta"):  # counts parameters without allocating them
        model = NextFrameDiT.from_size(size)
    count = sum(p.numel() for p in model.parameters())
    if size == "tiny":
        assert 2e6 <= count <= 10e6
    else:
        stated = float(size.rstrip("m")) * 1e6
        assert abs(count - stated) / stated < 0.05, f"{size}: {count / 1e6:.1f}M parameters"
    assert model.config.action_dim == DEFAULT_LATENT["action_dim"]


def test_bad_inputs_are_named():
    model = random_model()
    latents, levels, actions = random_inputs(model, batch=1, frames=2)
    with pytest.raises(ValueError, match=r"latents must be \[B, T, 4, 4, 6\]"):
        model(latents[..., :5], levels, actions)
    with pytest.raises(ValueError, match="noise_levels must be"):
        model(latents, levels[:, :1], actions)
    with pytest.raises(ValueError, match="actions must be"):
        model(latents, levels, actions[..., :3])
    with pytest.raises(ValueError, match="not divisible by patch size"):
        NextFrameDiT(**{**TINY, "latent_height": 5})
    with pytest.raises(ValueError, match="unknown model size 'huge'"):
        NextFrameDiT.from_size("huge")


def test_gradient_checkpointing_gives_the_same_gradients():
    model = random_model().train()
    latents, levels, actions = random_inputs(model, batch=2, frames=3)

    def grads():
        model.zero_grad()
        model(latents, levels, actions).square().mean().backward()
        return [p.grad.clone() for p in model.parameters()]

    plain = grads()
    model.enable_gradient_checkpointing()
    assert model.is_gradient_checkpointing
    checkpointed = grads()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, checkpointed, strict=True))


@torch.no_grad()
def test_bfloat16_forward_stays_close_to_float32():
    model = random_model()
    latents, levels, actions = random_inputs(model, batch=1, frames=3)
    reference = model(latents, levels, actions)
    low = model.to(torch.bfloat16)(latents, levels, actions).float()
    assert torch.isfinite(low).all()
    assert (low - reference).abs().max() < 0.05 * reference.abs().max()


def test_rope_scores_depend_only_on_the_time_distance():
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(1, 1, 6, 16, generator=g), torch.randn(1, 1, 6, 16, generator=g)  # one frame of 2x3

    def scores(query_frame: float, key_frame: float) -> torch.Tensor:
        rq = rope_rotations(torch.tensor([query_frame]), 2, 3, 16, 10000.0)
        rk = rope_rotations(torch.tensor([key_frame]), 2, 3, 16, 10000.0)
        return apply_rope(q, rq) @ apply_rope(k, rk).transpose(-1, -2)  # [1, 1, 6, 6]

    assert torch.allclose(scores(7, 3), scores(4, 0), atol=1e-5)
    assert torch.allclose(scores(-2, -5), scores(4, 1), atol=1e-5)
    assert not torch.allclose(scores(7, 3), scores(7, 4), atol=1e-3)
    rotated = apply_rope(q, rope_rotations(torch.tensor([3.0]), 2, 3, 16, 10000.0))
    assert torch.allclose(rotated.norm(dim=-1), q.norm(dim=-1), atol=1e-5)  # a rotation keeps lengths


@torch.no_grad()
@pytest.mark.parametrize("previous", [False, True])
@pytest.mark.parametrize("frames, window", [(5, 16), (6, 4)])
def test_teacher_forcing_denoises_each_frame_as_the_next_after_a_committed_context(frames, window, previous):
    model = random_model(max_frames=window, previous_frame_input=previous)
    noisy, levels, actions = random_inputs(model, batch=2, frames=frames, seed=1)
    context, context_levels, _ = random_inputs(model, batch=2, frames=frames, seed=2)
    forced = model(noisy, levels, actions, context=context, context_levels=context_levels)
    for i in range(frames):  # context frames < i, then noisy frame i: the last output is frame i's
        one = model(
            torch.cat([context[:, :i], noisy[:, i : i + 1]], 1),
            torch.cat([context_levels[:, :i], levels[:, i : i + 1]], 1),
            actions[:, : i + 1],
        )[:, -1]
        torch.testing.assert_close(forced[:, i], one, atol=2e-5, rtol=1e-4)
    # a noisy frame never sees another noisy frame; the context of frame 3 is frames 0..2 only
    shaken = noisy.clone()
    shaken[:, 1] += 1.0
    context_after = context.clone()
    context_after[:, 3:] += 1.0
    changed = model(shaken, levels, actions, context=context_after, context_levels=context_levels)
    assert frames_changed(forced, changed)[:4] == [False, True, False, False]


def test_teacher_forcing_bad_inputs_are_named():
    model = random_model(sink_frames=1, max_frames=4)
    noisy, levels, actions = random_inputs(model, batch=1, frames=3)
    with pytest.raises(ValueError, match="both context and context_levels"):
        model(noisy, levels, actions, context=noisy)
    with pytest.raises(ValueError, match="must have the shapes"):
        model(noisy, levels, actions, context=noisy[:, :2], context_levels=levels[:, :2])
    long, long_levels, long_actions = random_inputs(model, batch=1, frames=5)
    with pytest.raises(ValueError, match="sink frames needs clips of at most max_frames=4"):
        model(long, long_levels, long_actions, context=long, context_levels=long_levels)


@torch.no_grad()
def test_the_previous_frame_path_starts_unused_and_then_sees_the_previous_frame_only():
    plain = random_model(max_frames=4)
    model = NextFrameDiT(**{**TINY, "max_frames": 4, "previous_frame_input": True}).eval()
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["previous_embed.bias", "previous_embed.weight"] and not unexpected
    latents, levels, actions = random_inputs(model, batch=2, frames=6)
    torch.testing.assert_close(model(latents, levels, actions), plain(latents, levels, actions))
    # Trained, it also reads the previous frame's input. One block with a window of 2: frame 4
    # attends to frames 3 and 4, so a change of frame 2 reaches it only through frame 3's input.
    shifted = latents.clone()
    shifted[:, 2] += 1.0
    for previous, reaches in ((False, [False, False, True, True, False, False]),
                              (True, [False, False, True, True, True, False])):
        narrow = random_model(max_frames=2, depth=1, previous_frame_input=previous)
        changed = frames_changed(narrow(latents, levels, actions), narrow(shifted, levels, actions))
        assert changed == reaches
