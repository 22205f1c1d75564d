package dev.edgepipe.core;

/**
 * Model-input preprocessing, the path {@code mobile_models/scan.py} takes in Python: letterbox
 * the photo into the model's input (area resize as OpenCV's INTER_AREA, centred, {@link
 * Letterbox#PAD_VALUE} bands), then normalise each channel as {@code x = pixel * scale + bias},
 * the formula in model_card.json, and write it in the input tensor's type ({@link Tensors}).
 */
public final class Preprocess {
    private Preprocess() {}

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
