package dev.edgepipe.core;

import java.util.Arrays;

/**
 * Quad finder step 9, a port of {@code mobile_models/bands.py}: a side found on a printed band's
 * inner edge (a flyer's stripe, a form's frame) moves out to the page's edge past the band. The
 * image is the network's input, letterboxed and exposed, as packed ARGB; a side moves only where
 * past a uniform band a colour step runs parallel to it, and the band also reaches both of its
 * corners (a page lying on a plain surface beside another edge does not move).
 */
final class Bands {
    private Bands() {}

    static final int SAMPLES = 16;
    static final double SPAN_FROM = 0.15, SPAN_TO = 0.85;
    static final int SHIFT_FROM = 3;
    static final double STEP_SHARE = 0.7, CORNER_SHARE = 0.75, MAX_SHARE_OF_PAGE = 0.2;
    /** fewer usable samples along a corner's extension: that corner cannot tell */
    static final int MIN_CORNER_SAMPLES = 3;

    /** For each side k of {@code q} ({x0, y0, ..., x3, y3}), how many px it moves outward (0: stays). */
    static int[] shifts(double[] q, int[] argb, int mapW, int mapH, int[] frame, QuadFinder.Params p, int skipSide) {
        int[] out = new int[4];
        for (int k = 0; k < 4; k++) out[k] = k == skipSide ? 0 : shift(q, k, argb, mapW, mapH, frame, p);
        return out;
    }

    private static int shift(double[] q, int k, int[] argb, int mapW, int mapH, int[] frame, QuadFinder.Params p) {
        double ax = q[2 * k], ay = q[2 * k + 1], bx = q[(2 * k + 2) % 8], by = q[(2 * k + 3) % 8];
        double[] n = outwardNormal(q, k);
        double span = Math.min(Math.abs((q[(2 * k + 4) % 8] - ax) * n[0] + (q[(2 * k + 5) % 8] - ay) * n[1]),
                Math.abs((q[(2 * k + 6) % 8] - ax) * n[0] + (q[(2 * k + 7) % 8] - ay) * n[1]));
        int reach = (int) Math.min(p.bandMaxPx, MAX_SHARE_OF_PAGE * span);
        if (reach < SHIFT_FROM) return 0;
        // colours at every half px outward from the side: offset m / 2 is row m
        int rowsN = 2 * reach + 4;
        double[][][] rows = new double[rowsN][SAMPLES][];
        double[][] alongX = new double[rowsN][SAMPLES], alongY = new double[rowsN][SAMPLES];
        for (int m = 0; m < rowsN; m++) {
            for (int i = 0; i < SAMPLES; i++) {
                double t = linspace(SPAN_FROM, SPAN_TO, SAMPLES, i);
                double x = ax + t * (bx - ax) + (m / 2.0) * n[0], y = ay + t * (by - ay) + (m / 2.0) * n[1];
                alongX[m][i] = x;
                alongY[m][i] = y;
                rows[m][i] = sample(argb, mapW, mapH, x, y);
            }
        }
        int best = 0;
        double bestStep = -1;
        double[] colour = null;
        for (int shift = SHIFT_FROM; shift <= reach; shift++) {
            if (!inside(alongX[2 * shift + 3], alongY[2 * shift + 3], frame)) break;  // the photo ends
            double[] step = new double[SAMPLES];
            int strong = 0;
            for (int i = 0; i < SAMPLES; i++) {
                step[i] = distance(rows[2 * shift + 3][i], rows[2 * shift - 3][i]);
                if (step[i] > p.bandStep / 2) strong++;
            }
            double medianStep = median(step);
            if (medianStep < p.bandStep || (double) strong / SAMPLES < STEP_SHARE) continue;
            // every pixel 1 .. shift - 2 px out: one printed colour pixel by pixel (a texture
            // such as gravel or a carpet averages to one colour only)
            int count = (shift - 2) * SAMPLES;
            double[][] band = new double[count][];
            for (int j = 1; j <= shift - 2; j++) {
                for (int i = 0; i < SAMPLES; i++) band[(j - 1) * SAMPLES + i] = rows[2 * j][i];
            }
            double[] bandColour = new double[3];
            for (int c = 0; c < 3; c++) {
                double[] channel = new double[count];
                for (int i = 0; i < count; i++) channel[i] = band[i][c];
                bandColour[c] = median(channel);
            }
            double[] off = new double[count];
            for (int i = 0; i < count; i++) off[i] = distance(band[i], bandColour);
            if (median(off) <= p.bandSpread && medianStep > bestStep) {  // the strongest step; the nearest of equals
                best = shift;
                bestStep = medianStep;
                colour = bandColour;
            }
        }
        if (best == 0) return 0;
        int before = reachesCorner(q, (k + 3) % 4, ax, ay, n, best, colour, argb, mapW, mapH, frame, p);
        if (before == 0) return 0;  // as Python's all(): the second is not needed
        int after = reachesCorner(q, (k + 1) % 4, bx, by, n, best, colour, argb, mapW, mapH, frame, p);
        // both corners the band reaches, or one where the photo cannot show the other
        return after != 0 && (before == 1 || after == 1) ? best : 0;
    }

    /**
     * Along neighbouring side j's line, extended from the corner outward by the band's width, the
     * band's colour lies inside and a colour step crosses the line: 1 yes, 0 no, -1 cannot tell
     * (fewer than {@link #MIN_CORNER_SAMPLES} points with both sides of the line in the photo).
     */
    private static int reachesCorner(double[] q, int j, double cx, double cy, double[] n, int shift,
                                         double[] colour, int[] argb, int mapW, int mapH, int[] frame,
                                         QuadFinder.Params p) {
        double ax = q[2 * j], ay = q[2 * j + 1], bx = q[(2 * j + 2) % 8], by = q[(2 * j + 3) % 8];
        double norm = Math.hypot(bx - ax, by - ay) + 1e-12;
        double ux = (bx - ax) / norm, uy = (by - ay) / norm;
        if (ux * n[0] + uy * n[1] < 0) {
            ux = -ux;
            uy = -uy;
        }
        double length = shift / Math.max(Math.abs(ux * n[0] + uy * n[1]), 0.3);
        int count = Math.max(3, (int) length);
        double[] xs = new double[count], ys = new double[count];
        for (int i = 0; i < count; i++) {
            double s = linspace(1.0, Math.max(1.5, length - 1.0), count, i);
            xs[i] = cx + s * ux;
            ys[i] = cy + s * uy;
        }
        double[] nj = outwardNormal(q, j);
        int usable = 0;
        double[] ux2 = new double[count], uy2 = new double[count];
        for (int i = 0; i < count; i++) {
            double[] ex = {xs[i] - 2.0 * nj[0], xs[i] + 2.0 * nj[0]}, ey = {ys[i] - 2.0 * nj[1], ys[i] + 2.0 * nj[1]};
            if (inside(ex, ey, frame)) {
                ux2[usable] = xs[i];
                uy2[usable] = ys[i];
                usable++;
            }
        }
        if (usable < MIN_CORNER_SAMPLES) return -1;
        double half = p.bandStep / 2;
        double[] step = new double[usable], match = new double[usable];
        int strong = 0;
        for (int i = 0; i < usable; i++) {
            double[] inner = sample(argb, mapW, mapH, ux2[i] - 2.0 * nj[0], uy2[i] - 2.0 * nj[1]);
            step[i] = distance(sample(argb, mapW, mapH, ux2[i] + 2.0 * nj[0], uy2[i] + 2.0 * nj[1]), inner);
            match[i] = distance(inner, colour);
            if (step[i] > half) strong++;
        }
        return median(step) >= half && (double) strong / usable >= CORNER_SHARE && median(match) <= p.bandMatch ? 1 : 0;
    }

    /** Unit normal of side k pointing away from the quad's centre. */
    static double[] outwardNormal(double[] q, int k) {
        double ax = q[2 * k], ay = q[2 * k + 1], bx = q[(2 * k + 2) % 8], by = q[(2 * k + 3) % 8];
        double norm = Math.hypot(bx - ax, by - ay) + 1e-12;
        double dx = (bx - ax) / norm, dy = (by - ay) / norm;
        double nx = -dy, ny = dx;
        double mx = (q[0] + q[2] + q[4] + q[6]) / 4.0, my = (q[1] + q[3] + q[5] + q[7]) / 4.0;
        return (mx - ax) * nx + (my - ay) * ny > 0 ? new double[] {-nx, -ny} : new double[] {nx, ny};
    }

    /** numpy's linspace(from, to, count)[i]: the last point is {@code to} exactly. */
    private static double linspace(double from, double to, int count, int i) {
        return i == count - 1 ? to : from + i * ((to - from) / (count - 1));
    }

    private static boolean inside(double[] xs, double[] ys, int[] frame) {
        for (int i = 0; i < xs.length; i++) {
            if (xs[i] < frame[0] || xs[i] > frame[0] + frame[2] - 1 || ys[i] < frame[1] || ys[i] > frame[1] + frame[3] - 1) {
                return false;
            }
        }
        return true;
    }

    private static double distance(double[] a, double[] b) {
        double dr = a[0] - b[0], dg = a[1] - b[1], db = a[2] - b[2];
        return Math.sqrt(dr * dr + dg * dg + db * db);
    }

    /** numpy's median: the mean of the two middle values for an even count. */
    static double median(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        int m = v.length / 2;
        return v.length % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2.0;
    }

    /** Bilinear RGB at (x, y), coordinates clamped into the image, unrounded. */
    static double[] sample(int[] argb, int w, int h, double x, double y) {
        x = Math.max(0, Math.min(w - 1, x));
        y = Math.max(0, Math.min(h - 1, y));
        int x0 = (int) Math.floor(x), y0 = (int) Math.floor(y);
        int x1 = Math.min(x0 + 1, w - 1), y1 = Math.min(y0 + 1, h - 1);
        double fx = x - x0, fy = y - y0;
        double[] out = new double[3];
        for (int c = 0; c < 3; c++) {
            int shift = 16 - 8 * c;
            double v00 = (argb[y0 * w + x0] >> shift) & 0xff, v01 = (argb[y0 * w + x1] >> shift) & 0xff;
            double v10 = (argb[y1 * w + x0] >> shift) & 0xff, v11 = (argb[y1 * w + x1] >> shift) & 0xff;
            double top = v00 * (1 - fx) + v01 * fx, bottom = v10 * (1 - fx) + v11 * fx;
            out[c] = top * (1 - fy) + bottom * fy;
        }
        return out;
    }
}
