"""Task metrics for the document detector: edge F-score and corner error."""
import cv2
import numpy as np

from mobile_models.docquad import QuadParams, find_quad


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


def corner_error(found: np.ndarray | None, truth: np.ndarray, size: int) -> float:
    """Mean corner distance as a percentage of the image diagonal (inf if not found).
    Both are TL, TR, BR, BL; the best cyclic alignment guards the ordering at 45 deg."""
    if found is None:
        return float("inf")
    diag = np.hypot(size, size)
    return float(min(np.linalg.norm(np.roll(found, k, 0) - truth, axis=1).mean() for k in range(4)) / diag * 100)


def corner_metrics(edge_maps: np.ndarray, corners: np.ndarray, threshold: float = 0.5) -> dict:
    params = QuadParams(threshold=threshold)
    size = edge_maps.shape[1]
    errs = np.array([corner_error(find_quad(e, params).corners, c, size) for e, c in zip(edge_maps, corners)])
    finite = np.isfinite(errs)
    return {
        "corner_err_median_pct": float(np.percentile(errs, 50, method="nearest")),
        "corner_err_p90_pct": float(np.percentile(errs, 90, method="nearest")),
        "under_2pct": float(np.mean(errs < 2)),
        "under_5pct": float(np.mean(errs < 5)),
        "detection_rate": float(finite.mean()),
    }


def task_metrics(edge_maps, truth_edges, corners, threshold=0.5, tol=2) -> dict:
    return edge_fscore(edge_maps, truth_edges, threshold, tol) | corner_metrics(edge_maps, corners, threshold)
