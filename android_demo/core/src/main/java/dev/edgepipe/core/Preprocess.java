package dev.edgepipe.core;

/**
 * Model-input preprocessing, the path {@code mobile_models/scan.py} takes in Python: letterbox
 * the photo into the model's input (area resize as OpenCV's INTER_AREA, centred, {@link
 * Letterbox#PAD_VALUE} bands), then normalise each channel as {@code x = pixel * scale + bias},
 * the formula in model_card.json, and write it in the input tensor's type ({@link Tensors}).
 * Between the two, {@link #expose} brightens a dark frame as {@code scan.expose} does.
 */
public final class Preprocess {
    private Preprocess() {}

    /** {@code mobile_models/scan.py}'s auto-exposure: knee, target and the largest gain. */
    public static final double EXPOSURE_KNEE = 160.0, EXPOSURE_TARGET = 220.0, MAX_GAIN = 4.0;

    /** The letterboxed {@code inW x inH} packed-ARGB image (alpha 255) and where the photo lies in it. */
    public static final class Boxed {
        public final int[] argb;
        public final Letterbox box;

        Boxed(int[] argb, Letterbox box) {
            this.argb = argb;
            this.box = box;
        }
    }

    public static Boxed letterbox(int[] argb, int w, int h, int inW, int inH) {
        Letterbox box = Letterbox.of(h, w, inH, inW);
        int[] content = AreaResize.resize(argb, w, h, box.w, box.h);
        int pad = 0xff000000 | (Letterbox.PAD_VALUE * 0x010101);
        int[] canvas = new int[inW * inH];
        java.util.Arrays.fill(canvas, pad);
        for (int y = 0; y < box.h; y++) {
            System.arraycopy(content, y * box.w, canvas, (box.y + y) * inW + box.x, box.w);
        }
        return new Boxed(canvas, box);
    }

    /**
     * The gain for the photo's part of a letterboxed image ({@code stride} pixels a row): 1.0
     * unless its 99th-percentile brightness, (R + G + B) / 3, is under the knee. The same integer
     * histogram as Python's {@code exposure_gain}, so both get the same number.
     */
    public static double exposureGain(int[] argb, int stride, Letterbox box) {
        int[] hist = new int[766];
        for (int y = box.y; y < box.y + box.h; y++) {
            for (int x = box.x; x < box.x + box.w; x++) {
                int p = argb[y * stride + x];
                hist[((p >> 16) & 0xff) + ((p >> 8) & 0xff) + (p & 0xff)]++;
            }
        }
        double need = 0.99 * ((long) box.w * box.h);
        long cumulative = 0;
        int v = 0;
        for (; v < hist.length - 1; v++) {
            cumulative += hist[v];
            if (cumulative >= need) break;
        }
        double p99 = v / 3.0;
        return p99 >= EXPOSURE_KNEE ? 1.0 : Math.min(MAX_GAIN, EXPOSURE_TARGET / Math.max(p99, 1.0));
    }

    /** The letterboxed image with the photo's part brightened: floor(pixel * gain + 0.5), at most 255. */
    public static Boxed expose(Boxed boxed, int stride) {
        double gain = exposureGain(boxed.argb, stride, boxed.box);
        if (gain == 1.0) return boxed;
        int[] out = boxed.argb.clone();
        Letterbox b = boxed.box;
        for (int y = b.y; y < b.y + b.h; y++) {
            for (int x = b.x; x < b.x + b.w; x++) {
                int p = out[y * stride + x], q = 0xff000000;
                for (int shift = 16; shift >= 0; shift -= 8) {
                    q |= (int) Math.min(255, Math.floor(((p >> shift) & 0xff) * gain + 0.5)) << shift;
                }
                out[y * stride + x] = q;
            }
        }
        return new Boxed(out, b);
    }

    /** NHWC float RGB: {@code x = pixel * scale[c] + bias[c]} in float32, as numpy computes it. */
    public static float[] normalize(int[] argb, float[] scale, float[] bias) {
        float[] out = new float[argb.length * 3];
        for (int i = 0; i < argb.length; i++) {
            for (int c = 0; c < 3; c++) {
                int pixel = (argb[i] >> (16 - 8 * c)) & 0xff;
                out[3 * i + c] = pixel * scale[c] + bias[c];
            }
        }
        return out;
    }

    /** The same scale and bias for every channel. */
    public static float[] normalize(int[] argb, float scale, float bias) {
        return normalize(argb, new float[] {scale, scale, scale}, new float[] {bias, bias, bias});
    }

    /** Bilinear sample with edge clamping; returns packed ARGB (alpha 255). Used by page rectification. */
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
