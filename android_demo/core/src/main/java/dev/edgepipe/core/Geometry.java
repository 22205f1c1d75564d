package dev.edgepipe.core;

/** Quad geometry shared by the finder and the rectifier; mirrors docquad.py. */
public final class Geometry {
    private Geometry() {}

    /** Clockwise (image coordinates, y down) starting from the corner with the smallest x + y. */
    public static double[] orderCorners(double[] q) {
        double cx = 0, cy = 0;
        for (int k = 0; k < 4; k++) {
            cx += q[2 * k] / 4.0;
            cy += q[2 * k + 1] / 4.0;
        }
        Integer[] idx = {0, 1, 2, 3};
        final double[] ang = new double[4];
        for (int k = 0; k < 4; k++) ang[k] = Math.atan2(q[2 * k + 1] - cy, q[2 * k] - cx);
        java.util.Arrays.sort(idx, (a, b) -> Double.compare(ang[a], ang[b]));
        int start = 0;
        for (int k = 1; k < 4; k++) {
            int i = idx[k], s = idx[start];
            if (q[2 * i] + q[2 * i + 1] < q[2 * s] + q[2 * s + 1]) start = k;
        }
        double[] out = new double[8];
        for (int k = 0; k < 4; k++) {
            int i = idx[(start + k) % 4];
            out[2 * k] = q[2 * i];
            out[2 * k + 1] = q[2 * i + 1];
        }
        return out;
    }

    public static boolean isConvex(double[] q) {
        int pos = 0, neg = 0;
        for (int i = 0; i < 4; i++) {
            int a = i, b = (i + 1) % 4, c = (i + 2) % 4;
            double cross = (q[2 * b] - q[2 * a]) * (q[2 * c + 1] - q[2 * b + 1])
                    - (q[2 * b + 1] - q[2 * a + 1]) * (q[2 * c] - q[2 * b]);
            if (cross > 0) pos++;
            else if (cross < 0) neg++;
        }
        return pos == 4 || neg == 4;
    }

    public static double area(double[] q) {
        double s = 0;
        for (int i = 0; i < 4; i++) {
            int j = (i + 1) % 4;
            s += q[2 * i] * q[2 * j + 1] - q[2 * i + 1] * q[2 * j];
        }
        return Math.abs(s) / 2.0;
    }
}
