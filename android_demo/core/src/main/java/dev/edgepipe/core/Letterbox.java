package dev.edgepipe.core;

/**
 * Where the photo lies in the model input when it is scaled to fit with its aspect kept and the
 * rest padded: the content rectangle (x, y, w, h) in input pixels plus the photo's own size.
 * A port of {@code Letterbox} and {@code letterbox_geometry} in {@code mobile_models/scan.py}:
 * squeezing a 3:4 camera frame into a square input bends every angle the detector learned.
 */
public final class Letterbox {
    /** Band value in pixel units (before normalisation), as Python's {@code PAD_VALUE}. */
    public static final int PAD_VALUE = 0;

    public final int x, y, w, h, photoW, photoH;

    public Letterbox(int x, int y, int w, int h, int photoW, int photoH) {
        this.x = x;
        this.y = y;
        this.w = w;
        this.h = h;
        this.photoW = photoW;
        this.photoH = photoH;
    }

    /** Same argument order as Python's {@code letterbox_geometry(photo_h, photo_w, in_h, in_w)}. */
    public static Letterbox of(int photoH, int photoW, int inH, int inW) {
        double scale = Math.min((double) inW / photoW, (double) inH / photoH);
        // Math.rint rounds half to even, as Python's round()
        int w = Math.min(inW, Math.max(1, (int) Math.rint(photoW * scale)));
        int h = Math.min(inH, Math.max(1, (int) Math.rint(photoH * scale)));
        return new Letterbox((inW - w) / 2, (inH - h) / 2, w, h, photoW, photoH);
    }

    /** The content rectangle {x, y, w, h}: the quad finder's roi. */
    public int[] roi() {
        return new int[] {x, y, w, h};
    }

    /** Model-input pixel coordinates {x0, y0, x1, y1, ...} to photo pixel coordinates. */
    public double[] toPhoto(double[] pts) {
        double sx = (double) photoW / w, sy = (double) photoH / h;
        double[] out = new double[pts.length];
        for (int i = 0; i + 1 < pts.length; i += 2) {
            out[i] = (pts[i] - x) * sx;
            out[i + 1] = (pts[i + 1] - y) * sy;
        }
        return out;
    }

    /** Photo pixel coordinates to model-input pixel coordinates. */
    public double[] toInput(double[] pts) {
        double sx = (double) w / photoW, sy = (double) h / photoH;
        double[] out = new double[pts.length];
        for (int i = 0; i + 1 < pts.length; i += 2) {
            out[i] = pts[i] * sx + x;
            out[i + 1] = pts[i + 1] * sy + y;
        }
        return out;
    }

    @Override
    public String toString() {
        return "Letterbox(" + x + ", " + y + ", " + w + ", " + h + " of " + photoW + "x" + photoH + ")";
    }
}
