"""A tiny Pocket TTS model folder with random weights, built offline for tests.

The architecture is the real one (pocket-tts builds it from the YAML), shrunk to about 0.36 M
parameters so that loading takes milliseconds and a sentence takes a fraction of a second. The
tokenizer is a character-level unigram model written in code, since the real one lives on the
hub. Needs torch and pocket-tts; import this module only after ``pytest.importorskip``.
"""

from __future__ import annotations

import copy
import string
import tempfile
from pathlib import Path
from typing import Any

import yaml

SAMPLE_RATE = 24000
FRAME_SAMPLES = 1920
"""Mimi frames are 12.5 Hz: 1920 samples each at 24 kHz."""
NEVER_EOS = 1e9
"""EOS threshold no logit reaches: random weights then always make the maximum length,
``ceil((tokens / 3 + 2) * 12.5)`` frames, instead of stopping at a random frame."""


def build_tiny_pocket(folder: Path, *, weights: bool = True, seed: int = 0) -> Path:
    """Write ``config.yaml`` and ``tokenizer.json`` (and ``model.safetensors`` when ``weights``)
    into ``folder``; return the config path.

    With ``weights``, the config names the weights file (relative paths, as a user would write
    them) and the engine loads it through pocket-tts's strict loader; the random weights are
    made with ``torch.manual_seed(seed)`` and include a random speaker projection, so cloned
    voices differ. Without, the config names no weights and pocket-tts keeps its random init.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n_bins = _write_tokenizer(folder / "tokenizer.json")
    config = _config(n_bins)
    if weights:
        _write_weights(folder / "model.safetensors", config, folder / "tokenizer.json", seed)
        config["weights_path"] = "model.safetensors"
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _write_tokenizer(path: Path) -> int:
    import tokenizers
    from tokenizers import decoders, models, pre_tokenizers

    # "▁" must be a piece of its own: pocket-tts finds the sentence-end tokens by dropping the
    # first token of tokenizer(".!...?").
    chars = string.ascii_letters + string.digits + string.punctuation + " "
    word_starts = ("▁" + c for c in string.ascii_letters + string.digits)
    pieces = ["<unk>", "▁", *chars, *word_starts, "..."]
    tokenizer = tokenizers.Tokenizer(models.Unigram([(p, -1.0) for p in pieces], unk_id=0))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.save(str(path))
    return int(tokenizer.get_vocab_size())


CONFIG = """\
default_eos_threshold: {never_eos}
flow_lm:
  dtype: float32
  insert_bos_before_voice: true
  flow: {{dim: 32, depth: 2}}
  transformer: {{d_model: 64, hidden_scale: 2, max_period: 10000, num_heads: 4, num_layers: 2}}
  lookup_table:
    {{dim: 64, n_bins: {n_bins}, tokenizer: tokenizers, tokenizer_path: tokenizer.json}}
mimi:
  dtype: float32
  sample_rate: 24000
  channels: 1
  frame_rate: 12.5
  inner_dim: 32
  outer_dim: 64
  seanet:
    {{dimension: 64, channels: 1, n_filters: 8, n_residual_layers: 1, ratios: [6, 5, 4],
     kernel_size: 7, residual_kernel_size: 3, last_kernel_size: 3, dilation_base: 2,
     pad_mode: constant, compress: 2}}
  quantizer: {{dimension: 32, output_dimension: 64}}
  transformer:
    {{d_model: 64, num_heads: 4, num_layers: 1, layer_scale: 0.01, context: 250,
     dim_feedforward: 128, input_dimension: 64, output_dimensions: [64]}}
"""
"""The spec's tiny architecture. Constraints when shrinking: ``lookup_table.dim`` equals
``transformer.d_model``; ``mimi.inner_dim`` equals ``quantizer.dimension``; ``outer_dim`` is a
multiple of ``seanet.dimension``; 24000 / prod(``ratios``) is a multiple of ``frame_rate``."""


def _config(n_bins: int) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(CONFIG.format(never_eos=NEVER_EOS, n_bins=n_bins))
    return config


def _write_weights(path: Path, config: dict[str, Any], tokenizer: Path, seed: int) -> None:
    import safetensors.torch
    import torch
    from pocket_tts import TTSModel

    absolute = copy.deepcopy(config)
    absolute["flow_lm"]["lookup_table"]["tokenizer_path"] = str(tokenizer)
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp) / "tiny.yaml"
        config_path.write_text(yaml.safe_dump(absolute), encoding="utf-8")
        torch.manual_seed(seed)
        model = TTSModel.load_model(config=config_path)
    with torch.no_grad():
        # Zeros otherwise (the real weights fill it): the voice would then change nothing.
        model.flow_lm.speaker_proj_weight.normal_(0.0, 0.02)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(state, str(path))
