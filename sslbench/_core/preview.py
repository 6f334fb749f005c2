"""``sslbench show``: draw the inputs a task builds, with their targets, as one PNG.

So that a user, or a plugin author, can see what the network is asked to do: rotated
images, shuffled tiles, patch pairs, exemplar views, clean/strong pairs.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from .atomic import atomic_write_bytes
from ..images import Images
from ..task import PretextTask, PreviewRow


def draw_preview(rows: list[PreviewRow], title: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(r.images) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.9 * cols, 2.1 * len(rows)),
                             squeeze=False)
    for r, row in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(row.images):
                img = row.images[c].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
                ax.imshow(img, interpolation="nearest")
                ax.set_title(row.captions[c], fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())


def preview_task(task: PretextTask, images: Images, generator: torch.Generator,
                 count: int) -> list[PreviewRow]:
    """Rows for ``count`` of the uint8 ``images`` (after the task's ``prepare``)."""
    pool = task.prepare(images, generator)
    pick = torch.randperm(len(pool), generator=generator)[:count]
    return task.preview(pool[pick].float() / 255, generator)
