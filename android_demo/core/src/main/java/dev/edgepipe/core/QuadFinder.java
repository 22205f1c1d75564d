package dev.edgepipe.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Edge map to four ordered document corners, or "not found".
 *
 * <p>A line-by-line port of {@code mobile_models/docquad.py}: threshold, Hough transform
 * (1 px x 1 degree) with non-maximum suppression, iterative weighted least-squares line
 * refinement, enumeration of 4-line quads, and a perimeter score (samples on an edge minus
 * {@code missPenalty} times samples off any edge), and an optional roi (a letterboxed input's
 * content) that confines the edges and whose borders stand in for hidden sides. Cross-language
 * test vectors keep the two in step.
 */
public final class QuadFinder {

    /** Tunables; defaults equal Python's {@code QuadParams}. */
    public static final class Params {
        public float threshold = 0.5f;
        public int maxLines = 10;
        public double nmsRho = 10.0;
        public double nmsThetaDeg = 10.0;
        public double minVotesFrac = 0.12;
        public double minAreaFrac = 0.04;
        public double minPairAngleDeg = 30.0;
        public double maxParallelDeg = 50.0;
        public int supportTol = 2;
        public double minSupport = 0.5;
        /** score = supported - missPenalty * unsupported perimeter samples */
        public double missPenalty = 2.0;
    }

    /** Result: corners TL, TR, BR, BL as {x0, y0, ..., x3, y3}, or null with a reason. */
    public static final class Result {
        public final double[] corners;
        public final double support;
        public final String reason;

        Result(double[] corners, double support, String reason) {
            this.corners = corners;
            this.support = support;
            this.reason = reason;
        }

        public boolean found() {
            return corners != null;
        }
    }

    private static final int N_THETA = 180;
    private static final int MAX_PEAKS = 30;
    private static final double[] COS = new double[N_THETA];
    private static final double[] SIN = new double[N_THETA];

    static {
        for (int t = 0; t < N_THETA; t++) {
            double rad = t * Math.PI / 180.0;
            COS[t] = Math.cos(rad);
            SIN[t] = Math.sin(rad);
        }
    }

    private final Params p;

    public QuadFinder() {
        this(new Params());
    }

    public QuadFinder(Params params) {
        this.p = params;
    }

    /** @param prob row-major edge probabilities in [0, 1], {@code h * w} values */
    public Result find(float[] prob, int w, int h) {
        return find(prob, w, h, null);
    }

    /**
     * @param roi {x, y, w, h}: the part of the map that shows the photo (a letterboxed input's
     *     content); edges outside it are ignored and its borders stand in for hidden sides. Null:
     *     the whole map.
     */
    public Result find(float[] prob, int mapW, int mapH, int[] roi) {
        for (float v : prob) {
            if (Float.isNaN(v) || Float.isInfinite(v)) {
                return new Result(null, 0, "edge map is not a finite 2-D array");
            }
        }
        int[] frame = frame(roi, mapW, mapH);
        int x0 = frame[0], y0 = frame[1], w = frame[2], h = frame[3];
        boolean[] binary = new boolean[mapW * mapH];
        int count = 0;
        for (int y = y0; y < y0 + h; y++) {
            for (int x = x0; x < x0 + w; x++) {
                int i = y * mapW + x;
                binary[i] = prob[i] >= p.threshold;
                if (binary[i]) count++;
            }
        }
        if (count < p.minVotesFrac * Math.min(h, w)) {
            return new Result(null, 0, "too few edge pixels");
        }
        double cx = mapW / 2.0, cy = mapH / 2.0;
        List<double[]> lines = new ArrayList<>();
        for (double[] peak : houghLines(binary, mapW, mapH, count)) {
            double[] line = refineLine(prob, binary, mapW, mapH, peak[0], peak[1]);
            boolean dup = false;
            for (double[] other : lines) {
                if (sameLine(line, other, cx, cy)) { dup = true; break; }
            }
            if (!dup) lines.add(line);
        }
        if (lines.size() > p.maxLines) lines = new ArrayList<>(lines.subList(0, p.maxLines));
        if (lines.size() < 3) {
            return new Result(null, 0, "only " + lines.size() + " straight edges found");
        }
        boolean[] support = dilate(binary, mapW, mapH, p.supportTol);
        int n = lines.size();
        List<int[]> fours = new ArrayList<>();
        for (int i0 = 0; i0 < n; i0++) for (int i1 = i0 + 1; i1 < n; i1++)
        for (int i2 = i1 + 1; i2 < n; i2++) for (int i3 = i2 + 1; i3 < n; i3++) {
            fours.add(new int[] {i0, i1, i2, i3});
        }
        Result best = bestQuad(lines, fours, Integer.MAX_VALUE, support, mapW, frame);
        if (best.found()) return best;
        // A side out of frame or hidden: let the frame's border stand in for it.
        List<double[]> withBorders = new ArrayList<>(lines);
        withBorders.addAll(borderLines(frame));
        fours.clear();
        for (int i0 = 0; i0 < n; i0++) for (int i1 = i0 + 1; i1 < n; i1++)
        for (int i2 = i1 + 1; i2 < n; i2++) for (int k = 0; k < 4; k++) {
            fours.add(new int[] {i0, i1, i2, n + k});
        }
        return bestQuad(withBorders, fours, n, support, mapW, frame);
    }

    /** {@code roi} clipped to the map, or the whole map, as {x, y, w, h}. */
    static int[] frame(int[] roi, int mapW, int mapH) {
        if (roi == null) return new int[] {0, 0, mapW, mapH};
        int x = Math.min(Math.max(roi[0], 0), mapW - 1), y = Math.min(Math.max(roi[1], 0), mapH - 1);
        return new int[] {x, y, Math.max(1, Math.min(roi[2], mapW - x)), Math.max(1, Math.min(roi[3], mapH - y))};
    }

    /** The borders of {@code frame} (x, y, w, h) as {rho, theta}: top, bottom, left, right. */
    static List<double[]> borderLines(int[] frame) {
        int x = frame[0], y = frame[1], w = frame[2], h = frame[3];
        return Arrays.asList(new double[] {y, Math.PI / 2}, new double[] {y + h - 1.0, Math.PI / 2},
                new double[] {x, 0}, new double[] {x + w - 1.0, 0});
    }

    List<double[]> houghLines(boolean[] binary, int w, int h, int count) {
        int diag = (int) Math.ceil(Math.hypot(h, w));
        int nRho = 2 * diag + 1;
        final int[] acc = new int[nRho * N_THETA];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                if (!binary[y * w + x]) continue;
                for (int t = 0; t < N_THETA; t++) {
                    int rho = (int) Math.rint(x * COS[t] + y * SIN[t]) + diag;
                    acc[rho * N_THETA + t]++;
                }
            }
        }
        double minVotes = p.minVotesFrac * Math.min(h, w);
        List<Integer> cands = new ArrayList<>();
        for (int i = 0; i < acc.length; i++) {
            if (acc[i] >= minVotes) cands.add(i);
        }
        // strongest first; ties by index, as numpy's stable argsort of -acc
        cands.sort(new Comparator<Integer>() {
            @Override
            public int compare(Integer a, Integer b) {
                if (acc[a] != acc[b]) return acc[b] - acc[a];
                return a - b;
            }
        });
        if (cands.size() > 4000) cands = cands.subList(0, 4000);
        List<double[]> lines = new ArrayList<>();
        for (int idx : cands) {
            if (lines.size() == MAX_PEAKS) break;
            double[] line = {idx / N_THETA - diag, (idx % N_THETA) * Math.PI / 180.0};
            boolean dup = false;
            for (double[] other : lines) {
                if (sameLine(line, other, w / 2.0, h / 2.0)) { dup = true; break; }
            }
            if (!dup) lines.add(line);
        }
        return lines;
    }

    boolean sameLine(double[] l1, double[] l2, double cx, double cy) {
        if (angleBetween(l1[1], l2[1]) >= p.nmsThetaDeg) return false;
        double n1x = Math.cos(l1[1]), n1y = Math.sin(l1[1]);
        double n2x = Math.cos(l2[1]), n2y = Math.sin(l2[1]);
        double d1 = n1x * cx + n1y * cy - l1[0];
        double d2 = n2x * cx + n2y * cy - l2[0];
        if (n1x * n2x + n1y * n2y < 0) d2 = -d2;
        return Math.abs(d1 - d2) < p.nmsRho;
    }

    static double[] refineLine(float[] prob, boolean[] binary, int w, int h, double rho, double theta) {
        for (int iter = 0; iter < 3; iter++) {
            double c = Math.cos(theta), s = Math.sin(theta);
            double sw = 0, mx = 0, my = 0;
            int n = 0;
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int i = y * w + x;
                    if (!binary[i] || prob[i] <= 0) continue;
                    if (Math.abs(x * c + y * s - rho) <= 3.0) {
                        sw += prob[i]; mx += prob[i] * x; my += prob[i] * y; n++;
                    }
                }
            }
            if (n < 10) break;
            mx /= sw;
            my /= sw;
            double a = 0, b = 0, d = 0;
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int i = y * w + x;
                    if (!binary[i] || prob[i] <= 0) continue;
                    if (Math.abs(x * c + y * s - rho) <= 3.0) {
                        double dx = x - mx, dy = y - my;
                        a += prob[i] * dx * dx; b += prob[i] * dx * dy; d += prob[i] * dy * dy;
                    }
                }
            }
            double[] normal = smallestEigenvector(a, b, d);
            if (normal[0] * c + normal[1] * s < 0) {
                normal[0] = -normal[0];
                normal[1] = -normal[1];
            }
            rho = normal[0] * mx + normal[1] * my;
            theta = Math.atan2(normal[1], normal[0]);
        }
        return new double[] {rho, theta};
    }

    /** Unit eigenvector of the smaller eigenvalue of [[a, b], [b, d]]. */
    static double[] smallestEigenvector(double a, double b, double d) {
        double half = (a - d) / 2.0;
        double lambda = (a + d) / 2.0 - Math.sqrt(half * half + b * b);
        double vx1 = b, vy1 = lambda - a;   // from the first row
        double vx2 = lambda - d, vy2 = b;   // from the second row
        double n1 = Math.hypot(vx1, vy1), n2 = Math.hypot(vx2, vy2);
        if (n1 < 1e-12 && n2 < 1e-12) {
            return a <= d ? new double[] {1, 0} : new double[] {0, 1};
        }
        return n1 >= n2 ? new double[] {vx1 / n1, vy1 / n1} : new double[] {vx2 / n2, vy2 / n2};
    }

    static double angleBetween(double t1, double t2) {
        double d = Math.abs(t1 - t2) % Math.PI;
        return Math.toDegrees(Math.min(d, Math.PI - d));
    }

    static double[] intersect(double[] l1, double[] l2) {
        double a = Math.cos(l1[1]), b = Math.sin(l1[1]), c = Math.cos(l2[1]), d = Math.sin(l2[1]);
        double det = a * d - b * c;
        if (Math.abs(det) < 1e-6) return null;
        return new double[] {(l1[0] * d - b * l2[0]) / det, (a * l2[0] - l1[0] * c) / det};
    }

    /** Lines with index >= borderFrom are frame borders; the side on one is not scored. */
    private Result bestQuad(List<double[]> lines, List<int[]> fours, int borderFrom, boolean[] support, int mapW,
                            int[] frame) {
        double[] best = null;
        double bestScore = Double.NEGATIVE_INFINITY;
        double bestFrac = 0;
        int[][] pairings = {{0, 1, 2, 3}, {0, 2, 1, 3}, {0, 3, 1, 2}};
        for (int[] four : fours) {
            for (int[] pr : pairings) {
                int ip = four[pr[0]], iq = four[pr[1]], ir = four[pr[2]], is = four[pr[3]];
                double[] quad = candidate(lines.get(ip), lines.get(iq), lines.get(ir), lines.get(is));
                if (quad == null || !plausible(quad, frame)) continue;
                int[] sideLines = {ip, is, iq, ir};  // side k runs from corner k to corner k + 1
                int skip = -1;
                for (int k = 0; k < 4; k++) {
                    if (sideLines[k] >= borderFrom) { skip = k; break; }
                }
                double[] sup = perimeterSupport(quad, support, mapW, skip, frame);
                double score = sup[1] - p.missPenalty * (sup[2] - sup[1]);
                if (sup[0] >= p.minSupport && score > bestScore) {
                    best = quad;
                    bestScore = score;
                    bestFrac = sup[0];
                }
            }
        }
        if (best == null) return new Result(null, 0, "no plausible quadrilateral");
        return new Result(Geometry.orderCorners(best), bestFrac, "");
    }

    private double[] candidate(double[] lp, double[] lq, double[] lr, double[] ls) {
        if (angleBetween(lp[1], lq[1]) > p.maxParallelDeg || angleBetween(lr[1], ls[1]) > p.maxParallelDeg) {
            return null;
        }
        if (Math.min(angleBetween(lp[1], lr[1]), angleBetween(lq[1], ls[1])) < p.minPairAngleDeg) return null;
        double[][] pts = {intersect(lp, lr), intersect(lp, ls), intersect(lq, ls), intersect(lq, lr)};
        double[] quad = new double[8];
        for (int k = 0; k < 4; k++) {
            if (pts[k] == null) return null;
            quad[2 * k] = pts[k][0];
            quad[2 * k + 1] = pts[k][1];
        }
        return quad;
    }

    private boolean plausible(double[] q, int[] frame) {
        int x0 = frame[0], y0 = frame[1], w = frame[2], h = frame[3];
        for (int k = 0; k < 4; k++) {
            double x = q[2 * k], y = q[2 * k + 1];
            if (x < x0 - 0.5 * w || y < y0 - 0.5 * h || x > x0 + 1.5 * w || y > y0 + 1.5 * h) return false;
        }
        return Geometry.isConvex(q) && Geometry.area(q) >= p.minAreaFrac * h * w;
    }

    /**
     * {fraction of in-frame perimeter samples on an edge, number on an edge, number in frame};
     * side skipSide is not scored. {@code frame} (x, y, w, h): the part of the map that shows the photo.
     */
    static double[] perimeterSupport(double[] q, boolean[] support, int mapW, int skipSide, int[] frame) {
        int x0 = frame[0], y0 = frame[1], w = frame[2], h = frame[3];
        long hits = 0, total = 0;
        for (int k = 0; k < 4; k++) {
            if (k == skipSide) continue;
            double ax = q[2 * k], ay = q[2 * k + 1];
            double bx = q[(2 * k + 2) % 8], by = q[(2 * k + 3) % 8];
            int n = Math.max((int) Math.hypot(bx - ax, by - ay), 1);
            for (int i = 0; i < n; i++) {
                double t = (i + 0.5) / n;
                int xi = (int) Math.rint(ax + t * (bx - ax));
                int yi = (int) Math.rint(ay + t * (by - ay));
                if (xi >= x0 && xi < x0 + w && yi >= y0 && yi < y0 + h) {
                    total++;
                    if (support[yi * mapW + xi]) hits++;
                }
            }
        }
        return new double[] {total == 0 ? 0.0 : (double) hits / total, hits, total};
    }

    static boolean[] dilate(boolean[] binary, int w, int h, int r) {
        boolean[] out = new boolean[binary.length];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                if (!binary[y * w + x]) continue;
                for (int dy = -r; dy <= r; dy++) {
                    for (int dx = -r; dx <= r; dx++) {
                        int yy = y + dy, xx = x + dx;
                        if (yy >= 0 && yy < h && xx >= 0 && xx < w) out[yy * w + xx] = true;
                    }
                }
            }
        }
        return out;
    }

    static String describe(double[] corners) {
        return corners == null ? "not found" : Arrays.toString(corners);
    }
}
