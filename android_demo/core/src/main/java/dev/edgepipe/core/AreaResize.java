package dev.edgepipe.core;

/**
 * OpenCV's {@code cv2.resize(..., interpolation=cv2.INTER_AREA)} on 8-bit RGB, ported from
 * {@code modules/imgproc/src/resize.cpp} so the app feeds the model what Python's letterbox feeds
 * it. Three paths, as OpenCV chooses them:
 * <ul>
 *   <li>integer shrink factors: the mean of each block ({@code resizeAreaFast});
 *   <li>any other shrink: each output pixel integrates the source cells it covers, with float
 *       weights for partly covered cells ({@code resizeArea});
 *   <li>any enlargement: OpenCV's linear resize with INTER_AREA's coefficients, in 11-bit fixed
 *       point ({@code resizeGeneric_}).
 * </ul>
 * Pixels are packed ARGB (Android's {@code Bitmap.getPixels} layout); alpha comes out 255.
 */
public final class AreaResize {
    private AreaResize() {}

    private static final double DBL_EPSILON = 2.220446049250313e-16;
    private static final int COEF_SCALE = 1 << 11;  // INTER_RESIZE_COEF_SCALE

    public static int[] resize(int[] argb, int w, int h, int outW, int outH) {
        if (outW == w && outH == h) return argb.clone();
        double invScaleX = (double) outW / w, invScaleY = (double) outH / h;
        double scaleX = 1.0 / invScaleX, scaleY = 1.0 / invScaleY;
        int iscaleX = (int) Math.rint(scaleX), iscaleY = (int) Math.rint(scaleY);
        boolean fast = Math.abs(scaleX - iscaleX) < DBL_EPSILON && Math.abs(scaleY - iscaleY) < DBL_EPSILON;
        int[] out = new int[outW * outH];
        java.util.Arrays.fill(out, 0xff000000);
        for (int shift = 16; shift >= 0; shift -= 8) {
            byte[] plane;
            if (scaleX >= 1 && scaleY >= 1) {
                plane = fast ? blockMean(argb, w, h, shift, outW, outH, iscaleX, iscaleY)
                        : integrate(argb, w, h, shift, outW, outH, scaleX, scaleY);
            } else {
                plane = enlarge(argb, w, h, shift, outW, outH, scaleX, scaleY, invScaleX, invScaleY);
            }
            for (int i = 0; i < out.length; i++) out[i] |= (plane[i] & 0xff) << shift;
        }
        return out;
    }

    /** saturate_cast&lt;uchar&gt;(float): round half to even (cvRound), then clamp. */
    static int saturate(float v) {
        return (int) Math.max(0, Math.min(255, Math.rint(v)));
    }

    private static int px(int[] argb, int i, int shift) {
        return (argb[i] >> shift) & 0xff;
    }

    /** resizeAreaFast_: the 2x2 case rounds as (sum + 2) >> 2, the others as cvRound(sum / area). */
    static byte[] blockMean(int[] argb, int w, int h, int shift, int outW, int outH, int sx, int sy) {
        byte[] out = new byte[outW * outH];
        float scale = 1f / (sx * sy);
        for (int dy = 0; dy < outH; dy++) {
            for (int dx = 0; dx < outW; dx++) {
                int sum = 0;
                for (int ky = 0; ky < sy; ky++) {
                    for (int kx = 0; kx < sx; kx++) sum += px(argb, (dy * sy + ky) * w + dx * sx + kx, shift);
                }
                out[dy * outW + dx] = (byte) (sx == 2 && sy == 2 ? (sum + 2) >> 2 : saturate(sum * scale));
            }
        }
        return out;
    }

    /** computeResizeAreaTab: (destination index, source index, weight) triples along one axis. */
    static final class Tab {
        final int[] di, si;
        final float[] alpha;
        int n;

        Tab(int capacity) {
            di = new int[capacity];
            si = new int[capacity];
            alpha = new float[capacity];
        }

        void add(int d, int s, float a) {
            di[n] = d;
            si[n] = s;
            alpha[n++] = a;
        }
    }

    static Tab areaTab(int ssize, int dsize, double scale) {
        Tab tab = new Tab(ssize * 2 + 2);
        for (int dx = 0; dx < dsize; dx++) {
            double fsx1 = dx * scale;
            double fsx2 = fsx1 + scale;
            double cellWidth = Math.min(scale, ssize - fsx1);
            int sx1 = (int) Math.ceil(fsx1), sx2 = (int) Math.floor(fsx2);
            sx2 = Math.min(sx2, ssize - 1);
            sx1 = Math.min(sx1, sx2);
            if (sx1 - fsx1 > 1e-3) tab.add(dx, sx1 - 1, (float) ((sx1 - fsx1) / cellWidth));
            for (int sx = sx1; sx < sx2; sx++) tab.add(dx, sx, (float) (1.0 / cellWidth));
            if (fsx2 - sx2 > 1e-3) tab.add(dx, sx2, (float) (Math.min(Math.min(fsx2 - sx2, 1.0), cellWidth) / cellWidth));
        }
        return tab;
    }

    /** ResizeArea_Invoker: float sums in OpenCV's order, so the rounding matches too. */
    static byte[] integrate(int[] argb, int w, int h, int shift, int outW, int outH, double scaleX, double scaleY) {
        Tab xt = areaTab(w, outW, scaleX), yt = areaTab(h, outH, scaleY);
        byte[] out = new byte[outW * outH];
        float[] buf = new float[outW], sum = new float[outW];
        int prevDy = yt.di[0];
        for (int j = 0; j < yt.n; j++) {
            float beta = yt.alpha[j];
            int dy = yt.di[j], row = yt.si[j] * w;
            java.util.Arrays.fill(buf, 0f);
            for (int k = 0; k < xt.n; k++) {
                buf[xt.di[k]] = buf[xt.di[k]] + px(argb, row + xt.si[k], shift) * xt.alpha[k];
            }
            if (dy != prevDy) {
                for (int dx = 0; dx < outW; dx++) {
                    out[prevDy * outW + dx] = (byte) saturate(sum[dx]);
                    sum[dx] = beta * buf[dx];
                }
                prevDy = dy;
            } else {
                for (int dx = 0; dx < outW; dx++) sum[dx] += beta * buf[dx];
            }
        }
        for (int dx = 0; dx < outW; dx++) out[prevDy * outW + dx] = (byte) saturate(sum[dx]);
        return out;
    }

    /**
     * The source index and 11-bit weights per destination index, as cv::resize's area_mode.
     * Only along x does OpenCV pin a position past the last source pair to the last pixel.
     */
    static void linearTab(int ssize, int dsize, double scale, double invScale, boolean pinLast, int[] ofs,
                          short[] coef) {
        for (int d = 0; d < dsize; d++) {
            int s = (int) Math.floor(d * scale);
            float f = (float) ((d + 1) - (s + 1) * invScale);
            f = f <= 0 ? 0f : f - (float) Math.floor(f);
            if (pinLast && s + 1 >= ssize) {  // past the last pair: the last pixel alone
                f = 0;
                s = ssize - 1;
            }
            ofs[d] = s;
            coef[2 * d] = saturateShort((1f - f) * COEF_SCALE);
            coef[2 * d + 1] = saturateShort(f * COEF_SCALE);
        }
    }

    private static short saturateShort(float v) {
        return (short) Math.max(Short.MIN_VALUE, Math.min(Short.MAX_VALUE, Math.rint(v)));
    }

    /** resizeGeneric_ with HResizeLinear / VResizeLinear in fixed point. */
    static byte[] enlarge(int[] argb, int w, int h, int shift, int outW, int outH, double scaleX, double scaleY,
                          double invScaleX, double invScaleY) {
        int[] xofs = new int[outW], yofs = new int[outH];
        short[] alpha = new short[2 * outW], beta = new short[2 * outH];
        linearTab(w, outW, scaleX, invScaleX, true, xofs, alpha);
        linearTab(h, outH, scaleY, invScaleY, false, yofs, beta);
        int[] r0 = new int[outW], r1 = new int[outW];
        byte[] out = new byte[outW * outH];
        for (int dy = 0; dy < outH; dy++) {
            int sy0 = Math.min(yofs[dy], h - 1), sy1 = Math.min(yofs[dy] + 1, h - 1);
            horizontal(argb, sy0 * w, w, shift, xofs, alpha, r0);
            horizontal(argb, sy1 * w, w, shift, xofs, alpha, r1);
            int b0 = beta[2 * dy], b1 = beta[2 * dy + 1];
            for (int dx = 0; dx < outW; dx++) {
                // as OpenCV's vectorised VResizeLinearVec_32s8u rounds (what runs on x86 and ARM),
                // not its scalar (a * b0 + c * b1 + 2^21) >> 22, which differs by one level at times
                int v = ((((r0[dx] >> 4) * b0) >> 16) + (((r1[dx] >> 4) * b1) >> 16) + 2) >> 2;
                out[dy * outW + dx] = (byte) Math.max(0, Math.min(255, v));
            }
        }
        return out;
    }

    private static void horizontal(int[] argb, int row, int w, int shift, int[] xofs, short[] alpha, int[] dst) {
        for (int dx = 0; dx < dst.length; dx++) {
            int sx = xofs[dx];
            int next = Math.min(sx + 1, w - 1);
            dst[dx] = px(argb, row + sx, shift) * alpha[2 * dx] + px(argb, row + next, shift) * alpha[2 * dx + 1];
        }
    }
}
