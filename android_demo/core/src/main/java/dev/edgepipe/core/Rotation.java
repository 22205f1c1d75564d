package dev.edgepipe.core;

/**
 * Turning a camera frame upright. CameraX's {@code ImageInfo.getRotationDegrees()} is the
 * clockwise rotation that makes the buffer upright (90 for the back camera of a phone held in
 * portrait, on most phones); the model, the quad and the captured page all work on the upright
 * frame, so nothing downstream knows about sensor orientation.
 */
public final class Rotation {
    private Rotation() {}

    /** {width, height} after rotating a {@code w x h} frame by {@code degrees}. */
    public static int[] size(int w, int h, int degrees) {
        return normalize(degrees) % 180 == 0 ? new int[] {w, h} : new int[] {h, w};
    }

    /** Rotate packed pixels clockwise by 0, 90, 180 or 270 degrees. */
    public static int[] rotate(int[] px, int w, int h, int degrees) {
        int d = normalize(degrees);
        if (d == 0) return px;
        int[] out = new int[px.length];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int v = px[y * w + x];
                if (d == 90) out[x * h + (h - 1 - y)] = v;             // (x, y) -> (h-1-y, x), width h
                else if (d == 180) out[(h - 1 - y) * w + (w - 1 - x)] = v;
                else out[(w - 1 - x) * h + y] = v;                    // 270: (x, y) -> (y, w-1-x)
            }
        }
        return out;
    }

    static int normalize(int degrees) {
        int d = ((degrees % 360) + 360) % 360;
        if (d % 90 != 0) throw new IllegalArgumentException("rotation must be a multiple of 90, got " + degrees);
        return d;
    }
}
