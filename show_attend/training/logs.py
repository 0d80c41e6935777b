"""What a run shows while it trains: the one-line epoch summary, and in TensorBoard a few decoded
validation captions with a reference and the attention heatmaps over their words."""
from __future__ import annotations

import math
from typing import Any, Optional

from ..data.transforms import ImageTransform, load_image
from ..model.decoding import Decoded


def epoch_line(row: dict[str, Any], metric: str, best: Optional[float], best_epoch: int) -> str:
    """``epoch 3 | train loss .. | val ce .. | Bleu_4 .. | CIDEr .. | lr .. | 12s | best CIDEr .. @ 3``."""
    if "train_reward" in row:
        train = f"train reward {row['train_reward']:.3f} (baseline {row['train_baseline']:.3f})"
    else:
        supervision = f", supervision {row['train_supervision']:.3f}" if "train_supervision" in row else ""
        train = f"train loss {row['train_loss']:.3f} (ce {row['train_ce']:.3f}{supervision})"
    parts = [f"epoch {row['epoch']:3d}", train, f"val ce (teacher-forced) {row['val_loss_teacher_forced']:.3f}"]
    for name in ("Bleu_4", "CIDEr"):
        if name in row:
            parts.append(f"{name} {row[name]:.3f}")
    parts.append(f"lr {row['lr']:.2e}")
    parts.append(f"{row['seconds']:.0f}s")
    parts.append(f"best {metric} {best:.3f} @ {best_epoch}" if best is not None and not math.isnan(best) else "")
    return " | ".join(p for p in parts if p)


def log_samples(writer, captions: dict[str, str], references: dict[str, list[str]], step: int, n: int = 5) -> None:
    """The first ``n`` decoded validation captions, each with its first reference."""
    lines = []
    for image_id in list(captions)[:n]:
        refs = references.get(image_id, [])
        lines.append(f"**{image_id}**: {captions[image_id]}  \n_ref_: {refs[0] if refs else ''}")
    writer.add_text("val/samples", "\n\n".join(lines), step)


def log_attention(writer, decoded: dict[str, Decoded], dataset, encoder_cfg, step: int, n: int = 3) -> None:
    """Heatmaps over each generated word for a fixed set of validation images."""
    from ..model.geometry import encoder_geometry
    from ..viz.attention import plot_attention

    transform = ImageTransform(encoder_cfg.image_size, encoder_cfg.resize_mode)
    files = {im.image_id: dataset.image_dir / im.file_name for im in dataset.split("val")}
    for i, image_id in enumerate(list(decoded)[:n]):
        d = decoded[image_id]
        if not d.words or d.alphas is None:  # nothing said, or a model without attention
            continue
        image = load_image(files[image_id])
        fig = plot_attention(image, d.words, d.alphas, d.betas, crop_box=transform.crop_box(*image.size),
                             ncols=6, dpi=80, geometry=encoder_geometry(encoder_cfg))
        writer.add_figure(f"attention/{i}_{image_id}", fig, step)
