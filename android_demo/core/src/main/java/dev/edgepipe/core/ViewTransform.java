package dev.edgepipe.core;

/**
 * Photo (upright frame) coordinates to on-screen view coordinates for a preview that scales the
 * frame to fill the view and crops the overflow equally on both sides: CameraX PreviewView's
 * FILL_CENTER, when the preview and the analysis stream share the same field of view (same
 * aspect ratio, both uncropped), which the app asks CameraX for.
 */
public final class ViewTransform {
    public final double scale, dx, dy;

    private ViewTransform(double scale, double dx, double dy) {
        this.scale = scale;
        this.dx = dx;
        this.dy = dy;
    }

    public static ViewTransform fillCenter(int srcW, int srcH, int viewW, int viewH) {
        double scale = Math.max((double) viewW / srcW, (double) viewH / srcH);
        return new ViewTransform(scale, (viewW - srcW * scale) / 2.0, (viewH - srcH * scale) / 2.0);
    }

    /** {x0, y0, x1, y1, ...} in the source to the same points in the view. */
    public double[] map(double[] pts) {
        double[] out = new double[pts.length];
        for (int i = 0; i + 1 < pts.length; i += 2) {
            out[i] = pts[i] * scale + dx;
            out[i + 1] = pts[i + 1] * scale + dy;
        }
        return out;
    }
}
