package dev.edgepipe.core;

/**
 * Perspective rectification: the homography that maps the page rectangle onto the
 * detected quad (as OpenCV's getPerspectiveTransform), and a bilinear warp that
 * produces the flattened page.
 */
public final class Perspective {
    private Perspective() {}

    /** 3x3 row-major H with H * (src, 1) ~ (dst, 1) for four point pairs {x0, y0, ..., x3, y3}. */
    public static double[] transform(double[] src, double[] dst) {
        double[][] a = new double[8][9];
        for (int i = 0; i < 4; i++) {
            double x = src[2 * i], y = src[2 * i + 1], u = dst[2 * i], v = dst[2 * i + 1];
            a[2 * i] = new double[] {x, y, 1, 0, 0, 0, -u * x, -u * y, u};
            a[2 * i + 1] = new double[] {0, 0, 0, x, y, 1, -v * x, -v * y, v};
        }
        double[] h = solve(a);
        return new double[] {h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0};
    }

    /** Gaussian elimination with partial pivoting on an n x (n+1) augmented matrix. */
    static double[] solve(double[][] a) {
        int n = a.length;
        for (int col = 0; col < n; col++) {
            int piv = col;
            for (int r = col + 1; r < n; r++) if (Math.abs(a[r][col]) > Math.abs(a[piv][col])) piv = r;
            double[] tmp = a[col]; a[col] = a[piv]; a[piv] = tmp;
            if (Math.abs(a[col][col]) < 1e-12) throw new IllegalArgumentException("degenerate quad");
            for (int r = 0; r < n; r++) {
                if (r == col) continue;
                double f = a[r][col] / a[col][col];
                for (int c = col; c <= n; c++) a[r][c] -= f * a[col][c];
            }
        }
        double[] x = new double[n];
        for (int i = 0; i < n; i++) x[i] = a[i][n] / a[i][i];
        return x;
    }

    public static double[] apply(double[] h, double x, double y) {
        double w = h[6] * x + h[7] * y + h[8];
        return new double[] {(h[0] * x + h[1] * y + h[2]) / w, (h[3] * x + h[4] * y + h[5]) / w};
    }

    /** Output page size: the longer of each pair of opposite sides, rounded. */
    public static int[] pageSize(double[] corners) {
        double top = dist(corners, 0, 1), right = dist(corners, 1, 2);
        double bottom = dist(corners, 2, 3), left = dist(corners, 3, 0);
        return new int[] {(int) Math.round(Math.max(top, bottom)), (int) Math.round(Math.max(left, right))};
    }

    private static double dist(double[] c, int i, int j) {
        return Math.hypot(c[2 * j] - c[2 * i], c[2 * j + 1] - c[2 * i + 1]);
    }

    /**
     * Rectify: for each output pixel, map through the homography into the photo and sample
     * bilinearly. {@code argb} is row-major packed ARGB (Android's Bitmap.getPixels layout).
     */
    public static int[] rectify(int[] argb, int w, int h, double[] corners, int outW, int outH) {
        double[] rect = {0, 0, outW - 1, 0, outW - 1, outH - 1, 0, outH - 1};
        double[] hm = transform(rect, corners);
        int[] out = new int[outW * outH];
        for (int y = 0; y < outH; y++) {
            for (int x = 0; x < outW; x++) {
                double[] p = apply(hm, x, y);
                out[y * outW + x] = Preprocess.sampleBilinear(argb, w, h, p[0], p[1]);
            }
        }
        return out;
    }
}
