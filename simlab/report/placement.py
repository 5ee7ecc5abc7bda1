"""Labels placed beside their points so that none hides a point, an error bar or another label.

Each label tries positions around its point, nearest first (right, left, above, below, the diagonals), then
the same directions further out with a leader line back to the point; it takes the first that overlaps
nothing already on the axes and stays inside them, else the one that overlaps least. Greedy, in the order
given, measured in display pixels after the axes' layout is settled, so what is checked is what is drawn.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

DIRECTIONS = (  # offset in points, horizontal and vertical alignment of the text at that offset
    (7, 0, "left", "center"), (-7, 0, "right", "center"), (0, 8, "center", "bottom"), (0, -8, "center", "top"),
    (6, 6, "left", "bottom"), (-6, 6, "right", "bottom"), (6, -6, "left", "top"), (-6, -6, "right", "top"),
)
RINGS = (1.0, 2.6, 4.2)  # how far out each round of positions is; beyond the first, a leader line


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels


def _overlap(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def place_labels(fig: Any, ax: Any, xy: np.ndarray, texts: Sequence[str], obstacles: Sequence[Box] = (),
                 marker_px: float = 5.0, **text_kw: Any) -> list[Any]:
    """Annotate point i (data coordinates `xy[i]`) with `texts[i]`; returns the annotations in order.

    `obstacles` are further display boxes to keep clear of (error bars); every point is one already.
    """
    fig.canvas.draw()  # settle the constrained layout, so transData is the one the PNG is drawn with
    renderer = fig.canvas.get_renderer()
    pts = ax.transData.transform(np.asarray(xy, dtype=float)) if len(xy) else np.empty((0, 2))
    taken: list[Box] = [(x - marker_px, y - marker_px, x + marker_px, y + marker_px) for x, y in pts]
    taken += list(obstacles)
    frame = ax.bbox.extents
    placed = []
    for i, text in enumerate(texts):
        best, best_cost = None, np.inf
        for ring, (dx, dy, ha, va) in [(r, d) for r in RINGS for d in DIRECTIONS]:
            arrow = {"arrowstyle": "-", "color": "#8a94a0", "linewidth": 0.7, "shrinkA": 0, "shrinkB": 3} \
                if ring > 1 else None
            ann = ax.annotate(text, xy[i], xytext=(dx * ring, dy * ring), textcoords="offset points", ha=ha, va=va,
                              arrowprops=arrow, annotation_clip=False, **text_kw)
            ann.set_in_layout(False)
            box = tuple(ann.get_window_extent(renderer).extents)
            outside = max(0.0, frame[0] - box[0]) + max(0.0, box[2] - frame[2]) + max(0.0, frame[1] - box[1]) \
                + max(0.0, box[3] - frame[3])
            own = (pts[i][0] - marker_px, pts[i][1] - marker_px, pts[i][0] + marker_px, pts[i][1] + marker_px)
            cost = sum(_overlap(box, t) for t in taken if t != own) + 1e3 * outside + ring
            if cost < best_cost:
                if best is not None:
                    best[0].remove()
                best, best_cost = (ann, box), cost
            else:
                ann.remove()
            if cost <= ring:  # nothing hidden at this position: the nearest free one wins
                break
        taken.append(best[1])
        placed.append(best[0])
    return placed
