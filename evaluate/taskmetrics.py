"""Task metrics for the document detector: edge F-score and corner error."""
import cv2
import numpy as np

from edgepipe.mobile_models.docquad import QuadParams, find_quad


def edge_fscore(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5, tol: int = 2) -> dict:
    """Dataset-level F-score at a fixed threshold; a pixel counts as matched when
    the other map has an edge within ``tol`` pixels (square neighbourhood)."""
    kernel = np.ones((2 * tol + 1, 2 * tol + 1), np.uint8)
    tp_p = n_p = tp_r = n_t = 0
    for p, t in zip(pred, truth):
        p = (np.squeeze(p) >= threshold).astype(np.uint8)
        t = (np.squeeze(t) > 0).astype(np.uint8)
        tp_p += int((p & cv2.dilate(t, kernel)).sum())
        n_p += int(p.sum())
        tp_r += int((t & cv2.dilate(p, kernel)).sum())
        n_t += int(t.sum())
    precision = tp_p / n_p if n_p else 0.0
    recall = tp_r / n_t if n_t else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f_score": f}


THRESHOLDS = np.round(np.arange(0.05, 1.0, 0.05), 2)


def _counts(p: np.ndarray, t: np.ndarray, kernel) -> tuple[int, int, int, int]:
    """Matched predicted, predicted, matched true, true edge pixels."""
    return (int((p & cv2.dilate(t, kernel)).sum()), int(p.sum()), int((t & cv2.dilate(p, kernel)).sum()), int(t.sum()))


def _f(c) -> float:
    precision = c[0] / c[1] if c[1] else 0.0
    recall = c[2] / c[3] if c[3] else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def ods_ois(pred: np.ndarray, truth: np.ndarray, tol: int = 2) -> dict:
    """BSDS-style F-scores over thresholds: ODS picks one threshold for the whole
    dataset, OIS the best threshold per image (counts summed over images)."""
    kernel = np.ones((2 * tol + 1, 2 * tol + 1), np.uint8)
    per_image = []  # image -> threshold -> counts
    for p, t in zip(pred, truth):
        p, t = np.squeeze(p), (np.squeeze(t) > 0).astype(np.uint8)
        per_image.append(np.array([_counts((p >= th).astype(np.uint8), t, kernel) for th in THRESHOLDS]))
    counts = np.stack(per_image)                      # (images, thresholds, 4)
    dataset = [_f(c) for c in counts.sum(axis=0)]
    best = int(np.argmax(dataset))
    oist = counts[np.arange(len(counts)), [int(np.argmax([_f(c) for c in img])) for img in counts]].sum(axis=0)
    return {"ods_f": dataset[best], "ods_threshold": float(THRESHOLDS[best]), "ois_f": _f(oist)}


def corner_error(found: np.ndarray | None, truth: np.ndarray, size: int) -> float:
    """Mean corner distance as a percentage of the image diagonal (inf if not found).
    Both are TL, TR, BR, BL; the best cyclic alignment guards the ordering at 45 deg."""
    return _aligned_error(found, truth, np.hypot(size, size), np.mean)


def worst_corner_error(found: np.ndarray | None, truth: np.ndarray, width: int, height: int) -> float:
    """The farthest corner's distance as a percentage of the photo's diagonal
    (inf if not found): "every corner within 2%" means this is under 2."""
    return _aligned_error(found, truth, np.hypot(width, height), np.max)


def _aligned_error(found, truth, diag: float, reduce) -> float:
    """``reduce`` of the corner distances at the best cyclic alignment, in % of ``diag``."""
    if found is None:
        return float("inf")
    return float(min(reduce(np.linalg.norm(np.roll(found, k, 0) - truth, axis=1)) for k in range(4)) / diag * 100)


def error_summary(errs) -> dict:
    """Found rate, share within 2% and 5%, median and p90 of corner errors (inf = not found)."""
    errs = np.asarray(errs, np.float64)
    return {"count": int(errs.size), "found": float(np.isfinite(errs).mean()),
            "under_2pct": float(np.mean(errs < 2)), "under_5pct": float(np.mean(errs < 5)),
            "median_pct": float(np.percentile(errs, 50, method="nearest")),
            "p90_pct": float(np.percentile(errs, 90, method="nearest"))}


def error_table_lines(table: dict) -> list[str]:
    """``{condition: error_summary}`` as the lines of a fixed-width table, for the benchmarks."""
    lines = [f"{'condition':13} {'n':>4} {'found':>6} {'<2%':>6} {'<5%':>6} {'median %':>9} {'p90 %':>7}"]
    for name, m in table.items():
        lines.append(f"{name:13} {m['count']:4d} {m['found']:6.1%} {m['under_2pct']:6.1%} {m['under_5pct']:6.1%} "
                     f"{m['median_pct']:9.2f} {m['p90_pct']:7.2f}")
    return lines


def corner_metrics(edge_maps: np.ndarray, corners: np.ndarray, params: QuadParams = QuadParams(),
                   pages: np.ndarray | None = None, images: np.ndarray | None = None,
                   rois: np.ndarray | None = None) -> dict:
    """Corner errors of the quad finder as ``edgepipe scan`` runs it (its own threshold,
    not the F-score's; with the page-region maps when the model has them, the input
    images, RGB pixels, for the paper score and step 9, and each letterboxed input's
    content box as its roi)."""
    size = edge_maps.shape[1]
    pages = [None] * len(edge_maps) if pages is None else pages
    images = [None] * len(edge_maps) if images is None else images
    rois = [None] * len(edge_maps) if rois is None else [tuple(int(v) for v in r) for r in rois]
    errs = np.array([corner_error(find_quad(e, params, roi=r, page=p, image=im).corners, c, size)
                     for e, c, p, im, r in zip(edge_maps, corners, pages, images, rois)])
    finite = np.isfinite(errs)
    return {
        "corner_err_median_pct": float(np.percentile(errs, 50, method="nearest")),
        "corner_err_p90_pct": float(np.percentile(errs, 90, method="nearest")),
        "under_2pct": float(np.mean(errs < 2)),
        "under_5pct": float(np.mean(errs < 5)),
        "detection_rate": float(finite.mean()),
    }


def task_metrics(edge_maps, truth_edges, corners, threshold=0.5, tol=2, pages=None, images=None,
                 rois=None) -> dict:
    return (edge_fscore(edge_maps, truth_edges, threshold, tol) | ods_ois(edge_maps, truth_edges, tol)
            | corner_metrics(edge_maps, corners, pages=pages, images=images, rois=rois))
