package dev.edgepipe.core;

/**
 * Model-input preprocessing: resize a packed-ARGB frame to the model's input size
 * (bilinear, pixel centres aligned as OpenCV's INTER_LINEAR) and normalise each
 * channel as {@code x = pixel * scale + bias}, the formula in model_card.json.
 */
public final class Preprocess {
    private Preprocess() {}

    /** NHWC float RGB of size outW x outH x 3. */
    public static float[] toInput(int[] argb, int w, int h, int outW, int outH, float scale, float bias) {
        float[] out = new float[outW * outH * 3];
        double sx = (double) w / outW, sy = (double) h / outH;
        for (int y = 0; y < outH; y++) {
            for (int x = 0; x < outW; x++) {
                int px = sampleBilinear(argb, w, h, (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5);
                int o = (y * outW + x) * 3;
                out[o] = ((px >> 16) & 0xff) * scale + bias;
                out[o + 1] = ((px >> 8) & 0xff) * scale + bias;
                out[o + 2] = (px & 0xff) * scale + bias;
            }
        }
        return out;
    }

    /** Quantize a float input for an int8 model: q = round(x / scale) + zeroPoint, clamped. */
    public static byte[] quantize(float[] x, float scale, int zeroPoint) {
        byte[] q = new byte[x.length];
        for (int i = 0; i < x.length; i++) {
            long v = Math.round(Math.rint(x[i] / scale)) + zeroPoint;
            q[i] = (byte) Math.max(-128, Math.min(127, v));
        }
        return q;
    }

    /** Bilinear sample with edge clamping; returns packed ARGB (alpha 255). */
    public static int sampleBilinear(int[] argb, int w, int h, double fx, double fy) {
        fx = Math.max(0, Math.min(w - 1, fx));
        fy = Math.max(0, Math.min(h - 1, fy));
        int x0 = (int) Math.floor(fx), y0 = (int) Math.floor(fy);
        int x1 = Math.min(x0 + 1, w - 1), y1 = Math.min(y0 + 1, h - 1);
        double ax = fx - x0, ay = fy - y0;
        int out = 0xff000000;
        for (int shift = 16; shift >= 0; shift -= 8) {
            double v00 = (argb[y0 * w + x0] >> shift) & 0xff, v01 = (argb[y0 * w + x1] >> shift) & 0xff;
            double v10 = (argb[y1 * w + x0] >> shift) & 0xff, v11 = (argb[y1 * w + x1] >> shift) & 0xff;
            double v = (v00 * (1 - ax) + v01 * ax) * (1 - ay) + (v10 * (1 - ax) + v11 * ax) * ay;
            out |= ((int) Math.round(v) & 0xff) << shift;
        }
        return out;
    }
}
