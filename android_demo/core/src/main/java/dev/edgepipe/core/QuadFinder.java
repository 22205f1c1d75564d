package dev.edgepipe.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Edge map to four ordered document corners, or "not found".
 *
 * <p>A line-by-line port of {@code mobile_models/docquad.py}; cross-language test vectors keep
 * the two in step. The steps, as in the Python module's docstring:
 * <ol>
 *   <li>threshold the edge map (inside the roi, a letterboxed input's content, less
 *       {@code roiMargin} pixels next to its bands, when there is one);
 *   <li>Hough transform (1 px x 1 degree), peaks with non-maximum suppression;
 *   <li>refine each line by a weighted least-squares fit to nearby edge pixels;
 *   <li>for every 4 lines and each way to split them into two opposite pairs, the quad of
 *       their intersections; keep convex quads with plausible angles and area;
 *   <li>also ({@code openGapPx} &gt; 0), for every two roughly parallel lines and a third crossing
 *       both (three sides of a page), each of the two followed from its corner along its support
 *       pixels, over gaps up to {@code openGapPx}, to where it ends: the line through the two ends
 *       is a fourth side where the edge map has none (a pale page edge on a pale desk, a shadow);
 *   <li>also ({@code regions}), for every connected outline of edge pixels that stays inside
 *       the frame, the quad of its extreme points, each side snapped to the edge ridge: a small
 *       page in a busy scene is a closed outline whose short sides lose the Hough vote to the
 *       scene's long lines (buildings, tile grout, shelves);
 *   <li>score each by its in-frame perimeter: samples on an edge minus {@code missPenalty}
 *       times samples off any edge; pick the best-scoring quad among those with at least
 *       {@code minSupport} of the perimeter on edges, else report "not found". Penalising gaps
 *       keeps the page's sides, extended to meet background lines (floor tile grout, a cup's
 *       rim, another object), from outscoring the page just because the larger quad has more
 *       supported pixels. Given the input image, each sample also scores {@code paperWeight}
 *       times how much the pixel just inside looks like the quad's paper (the median colour
 *       just inside its sides) minus how much the pixel just outside does;
 *   <li>if no quad is found (a side out of frame or hidden), try three Hough lines plus one
 *       border of the frame (the roi, or the whole map), scoring only the three real sides;
 *   <li>polish the chosen quad: refit each side to the edge pixels along that side alone
 *       (between its corners, less {@code polishTrim} at each end), not along the whole line,
 *       where a background edge in line with the side tilts the fit; then intersect the new
 *       sides, at most {@code polishIterations} times, keeping each corner within
 *       {@code polishMaxMove} px of where it was chosen;
 *   <li>given the input image, a side found on a printed band's inner edge (a flyer's stripe, a
 *       form's frame) moves out to the page's edge past the band, up to {@code bandMaxPx}
 *       ({@link Bands}).
 * </ol>
 */
public final class QuadFinder {

    /** Tunables; defaults equal Python's {@code QuadParams}. */
    public static final class Params {
        /** low: a pale or blurred page side is a weak edge; the perimeter score rejects noise */
        public float threshold = 0.25f;
        public int maxLines = 10;
        public double nmsRho = 10.0;
        public double nmsThetaDeg = 10.0;
        public double minVotesFrac = 0.12;
        /** of the frame: real edge maps stay under 0.15; more is not an edge map */
        public double maxEdgeFrac = 0.4;
        /** of the frame: a receipt at arm's length in a 12 MP frame is ~1% */
        public double minAreaFrac = 0.006;
        /** shorter sides are the blur where two edges cross, not a page */
        public double minSidePx = 10.0;
        /** a page tilted 60 degrees away has corners this sharp in the photo */
        public double minPairAngleDeg = 20.0;
        public double maxParallelDeg = 50.0;
        public int supportTol = 2;
        public double minSupport = 0.5;
        /** score = supported - missPenalty * unsupported perimeter samples */
        public double missPenalty = 2.0;
        /** edge pixels this close to a letterbox band are the band's, not the page's (roi only) */
        public int roiMargin = 2;
        /** also propose quads around connected edge outlines (step 5) */
        public boolean regions = true;
        /** step 4b follows a side over gaps this long; 0 turns step 4b off */
        public int openGapPx = 8;
        /** score per sample for page inside minus page outside (with a page-region map only) */
        public double pageWeight = 1.0;
        /** px from the side where the page map is read: past its blurred transition */
        public double pageOffset = 4.0;
        /** score per sample for "paper inside, not outside", read from the input image (image only) */
        public double paperWeight = 1.0;
        /** px from the side where the image is read */
        public double paperOffset = 4.0;
        /** RGB distance at which a pixel stops looking like the quad's paper */
        public double paperSigma = 30.0;
        /** step 8's refits; 0 turns it off */
        public int polishIterations = 3;
        /** px either side of a side whose edge pixels are refitted */
        public double polishBand = 2.0;
        /** of the side's length, left out at each end: the blur where two edges cross */
        public double polishTrim = 0.1;
        /** px: a corner the refit would move further is left where it was */
        public double polishMaxMove = 8.0;
        /** step 9: the widest printed band a side moves across; 0 turns step 9 off */
        public int bandMaxPx = 20;
        /** RGB distance (0-255) across the page's edge past the band */
        public double bandStep = 40.0;
        /** median RGB distance of the band's pixels from its colour: one printed colour */
        public double bandSpread = 18.0;
        /** RGB distance between the band and what lies inside its corners' extension */
        public double bandMatch = 30.0;
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
    /** Python's {@code THETAS = np.deg2rad(np.arange(180))}: t * (pi / 180), bit for bit; (t * pi) / 180
     *  differs in the last bit for 44 of them, which moves Hough votes across a rounding boundary. */
    private static final double[] THETAS = new double[N_THETA];
    private static final double[] COS = new double[N_THETA];
    private static final double[] SIN = new double[N_THETA];

    static {
        for (int t = 0; t < N_THETA; t++) {
            double rad = t * (Math.PI / 180.0);
            THETAS[t] = rad;
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
        return find(prob, mapW, mapH, roi, null);
    }

    /**
     * @param page the model's page-region probabilities ({@code h * w} values, row-major), or null
     *     for a model without them. Each perimeter sample then also scores {@code pageWeight}
     *     times (page {@code pageOffset} px inside the side minus outside it).
     */
    public Result find(float[] prob, int mapW, int mapH, int[] roi, float[] page) {
        return find(prob, mapW, mapH, roi, page, null);
    }

    /**
     * @param image the network's input the maps were computed from (letterboxed and exposed,
     *     packed ARGB, {@code mapW * mapH} pixels, as {@link Preprocess.Boxed#argb}), or null;
     *     with it, step 9 moves a side found on a printed band's inner edge out to the page's edge.
     */
    public Result find(float[] prob, int mapW, int mapH, int[] roi, float[] page, int[] image) {
        if (image != null && image.length != prob.length) {
            return new Result(null, 0, "image has " + image.length + " pixels, the edge map " + prob.length);
        }
        for (float v : prob) {
            if (Float.isNaN(v) || Float.isInfinite(v)) {
                return new Result(null, 0, "edge map is not a finite 2-D array");
            }
        }
        if (page != null) {
            if (page.length != prob.length) {
                return new Result(null, 0, "page map has " + page.length + " values, the edge map " + prob.length);
            }
            for (float v : page) {
                if (Float.isNaN(v) || Float.isInfinite(v)) {
                    return new Result(null, 0, "page map has NaN or infinite values");
                }
            }
        }
        int[] frame = frame(roi, mapW, mapH);
        int x0 = frame[0], y0 = frame[1], w = frame[2], h = frame[3];
        int m = roi != null ? p.roiMargin : 0;
        boolean[] binary = new boolean[mapW * mapH];
        int count = 0;
        for (int y = y0 + m; y < y0 + h - m; y++) {
            for (int x = x0 + m; x < x0 + w - m; x++) {
                int i = y * mapW + x;
                binary[i] = prob[i] >= p.threshold;
                if (binary[i]) count++;
            }
        }
        if (count < p.minVotesFrac * Math.min(h, w)) {
            return new Result(null, 0, "too few edge pixels");
        }
        if (count > p.maxEdgeFrac * h * w) {  // a segmentation head, or a map that is all edge
            return new Result(null, 0, "edge map saturated: most pixels are edges (is this an edge-detection model?)");
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
        // Fewer than 3 Hough lines is no reason to stop: a small page's short sides may
        // lose every vote and still close an outline that step 5 finds.
        boolean[] support = dilate(binary, mapW, mapH, p.supportTol);
        List<double[]> hough = lines;
        int n = hough.size();
        List<int[]> fours = new ArrayList<>();
        for (int i0 = 0; i0 < n; i0++) for (int i1 = i0 + 1; i1 < n; i1++)
        for (int i2 = i1 + 1; i2 < n; i2++) for (int i3 = i2 + 1; i3 < n; i3++) {
            fours.add(new int[] {i0, i1, i2, i3});
        }
        lines = new ArrayList<>(hough);
        if (p.openGapPx > 0) {
            List<double[]> extra = new ArrayList<>();
            openSideQuads(hough, support, mapW, frame, cx, cy, extra, fours);
            lines.addAll(extra);
        }
        if (p.regions) {
            int offset = lines.size();
            List<double[]> extra = new ArrayList<>();
            List<int[]> extraFours = new ArrayList<>();
            regionQuads(support, prob, binary, mapW, mapH, frame, extra, extraFours);
            for (int[] four : extraFours) {
                fours.add(new int[] {offset + four[0], offset + four[1], offset + four[2], offset + four[3]});
            }
            lines.addAll(extra);
        }
        double[] best = fours.isEmpty() ? null : bestQuad(lines, fours, Integer.MAX_VALUE, support, page, image, mapW, frame);
        if (best == null) {
            // A side out of frame or hidden: let the frame's border stand in for it (Hough lines only).
            List<double[]> withBorders = new ArrayList<>(hough);
            withBorders.addAll(borderLines(frame));
            fours = new ArrayList<>();
            for (int i0 = 0; i0 < n; i0++) for (int i1 = i0 + 1; i1 < n; i1++)
            for (int i2 = i1 + 1; i2 < n; i2++) for (int k = 0; k < 4; k++) {
                fours.add(new int[] {i0, i1, i2, n + k});
            }
            best = bestQuad(withBorders, fours, n, support, page, image, mapW, frame);
        }
        if (best == null) {
            return new Result(null, 0, n < 3 ? "only " + n + " straight edges found" : "no plausible quadrilateral");
        }
        double[] quad = polishQuad(Arrays.copyOf(best, 8), prob, binary, mapW, mapH, (int) best[9]);
        if (image != null && p.bandMaxPx > 0) quad = widenToBands(quad, image, mapW, mapH, frame, (int) best[9]);
        return new Result(Geometry.orderCorners(quad), best[8], "");
    }

    /** Step 9: each side moved out by its {@link Bands#shifts}; the quad as it was if they do not meet convex. */
    double[] widenToBands(double[] quad, int[] image, int mapW, int mapH, int[] frame, int keepSide) {
        int[] shifts = Bands.shifts(quad, image, mapW, mapH, frame, p, keepSide);
        if (shifts[0] == 0 && shifts[1] == 0 && shifts[2] == 0 && shifts[3] == 0) return quad;
        double[][] lines = new double[4][];
        for (int k = 0; k < 4; k++) {
            double[] line = sideLine(quad, k);
            double[] n = Bands.outwardNormal(quad, k);
            lines[k] = new double[] {line[0] + shifts[k] * (n[0] * Math.cos(line[1]) + n[1] * Math.sin(line[1])), line[1]};
        }
        double[] widened = new double[8];
        for (int k = 0; k < 4; k++) {
            double[] c = intersect(lines[(k + 3) % 4], lines[k]);
            if (c == null) return quad;
            widened[2 * k] = c[0];
            widened[2 * k + 1] = c[1];
        }
        return Geometry.isConvex(widened) ? widened : quad;
    }

    /**
     * Step 8: {@code chosen} (side k from corner k to k + 1) with each side refitted to the edge
     * pixels along it; {@code keepSide} (one on the frame's border, or -1) stays.
     */
    double[] polishQuad(double[] chosen, float[] prob, boolean[] binary, int mapW, int mapH, int keepSide) {
        double[] quad = chosen;
        for (int iter = 0; iter < p.polishIterations; iter++) {
            double[][] lines = new double[4][];
            for (int k = 0; k < 4; k++) {
                lines[k] = k == keepSide ? sideLine(quad, k) : refitSide(quad, k, prob, binary, mapW, mapH);
            }
            double[] polished = new double[8];
            double moved = 0;
            for (int k = 0; k < 4; k++) {
                double[] c = intersect(lines[(k + 3) % 4], lines[k]);
                if (c == null) return quad;
                polished[2 * k] = c[0];
                polished[2 * k + 1] = c[1];
                moved = Math.max(moved, Math.max(Math.abs(c[0] - chosen[2 * k]), Math.abs(c[1] - chosen[2 * k + 1])));
            }
            if (!Geometry.isConvex(polished) || moved > p.polishMaxMove) return quad;
            quad = polished;
        }
        return quad;
    }

    /** {rho, theta} of the line through corners k and k + 1. */
    static double[] sideLine(double[] q, int k) {
        double ax = q[2 * k], ay = q[2 * k + 1], bx = q[(2 * k + 2) % 8], by = q[(2 * k + 3) % 8];
        double length = Math.hypot(bx - ax, by - ay) + 1e-12;
        double nx = -(by - ay) / length, ny = (bx - ax) / length;
        return new double[] {nx * ax + ny * ay, Math.atan2(ny, nx)};
    }

    /**
     * Side k's line fitted (weighted total least squares) to the edge pixels within
     * {@code polishBand} of the segment, away from its ends; the side as it is where fewer than 8
     * lie there.
     */
    double[] refitSide(double[] q, int k, float[] prob, boolean[] binary, int mapW, int mapH) {
        double[] line = sideLine(q, k);
        double ax = q[2 * k], ay = q[2 * k + 1], bx = q[(2 * k + 2) % 8], by = q[(2 * k + 3) % 8];
        double length = Math.hypot(bx - ax, by - ay) + 1e-12;
        double c = Math.cos(line[1]), s = Math.sin(line[1]);
        double sw = 0, mx = 0, my = 0;
        int count = 0;
        for (int pass = 0; pass < 2; pass++) {  // the weighted mean, then the scatter about it (as refineLine)
            double a = 0, b = 0, d = 0;
            for (int y = 0; y < mapH; y++) {
                for (int x = 0; x < mapW; x++) {
                    int i = y * mapW + x;
                    if (!binary[i] || prob[i] <= 0) continue;
                    double along = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / (length * length);
                    if (Math.abs(x * c + y * s - line[0]) > p.polishBand || along < p.polishTrim
                            || along > 1 - p.polishTrim) {
                        continue;
                    }
                    if (pass == 0) {
                        sw += prob[i]; mx += prob[i] * x; my += prob[i] * y; count++;
                    } else {
                        double dx = x - mx, dy = y - my;
                        a += prob[i] * dx * dx; b += prob[i] * dx * dy; d += prob[i] * dy * dy;
                    }
                }
            }
            if (pass == 0) {
                if (count < 8) return line;
                mx /= sw;
                my /= sw;
                continue;
            }
            double[] normal = smallestEigenvector(a, b, d);
            if (normal[0] * c + normal[1] * s < 0) {
                normal[0] = -normal[0];
                normal[1] = -normal[1];
            }
            return new double[] {normal[0] * mx + normal[1] * my, Math.atan2(normal[1], normal[0])};
        }
        return line;
    }

    /**
     * Quads closed across a side the edge map lacks (step 4b): for two roughly parallel lines and
     * a third crossing both, each of the two is followed from its corner along its support pixels
     * ({@link LineRuns}) on one side of the third, then on the other; the line through the two
     * ends closes the quad, unless it is one of {@code lines} already. Each new line is appended to
     * {@code out}, and its quadruple (into {@code lines} followed by {@code out}) to {@code fours}.
     */
    void openSideQuads(List<double[]> lines, boolean[] support, int mapW, int[] frame, double cx, double cy,
                       List<double[]> out, List<int[]> fours) {
        int n = lines.size();
        LineRuns[] runs = new LineRuns[n];
        for (int a = 0; a < n; a++) {
            for (int b = a + 1; b < n; b++) {
                double[] la = lines.get(a), lb = lines.get(b);
                if (angleBetween(la[1], lb[1]) > p.maxParallelDeg) continue;
                if (runs[a] == null) runs[a] = new LineRuns(la, support, mapW, frame, p.openGapPx, p.supportTol);
                if (runs[b] == null) runs[b] = new LineRuns(lb, support, mapW, frame, p.openGapPx, p.supportTol);
                boolean sameWay = runs[a].ux * runs[b].ux + runs[a].uy * runs[b].uy > 0;
                for (int r = 0; r < n; r++) {
                    if (r == a || r == b) continue;
                    double[] lr = lines.get(r);
                    if (Math.min(angleBetween(lr[1], la[1]), angleBetween(lr[1], lb[1])) < p.minPairAngleDeg) continue;
                    double[] ca = intersect(la, lr), cb = intersect(lb, lr);
                    if (ca == null || cb == null) continue;
                    for (int sign = 1; sign >= -1; sign -= 2) {
                        double[] ea = runs[a].end(ca, sign), eb = runs[b].end(cb, sameWay ? sign : -sign);
                        if (ea == null || eb == null
                                || Math.min(Math.hypot(ea[0] - ca[0], ea[1] - ca[1]),
                                            Math.hypot(eb[0] - cb[0], eb[1] - cb[1])) < p.minSidePx) {
                            continue;  // no side runs on from a corner there
                        }
                        double[] line = lineThrough(ea, eb, p.minSidePx);
                        if (line == null || isKnown(line, lines, cx, cy)) continue;
                        fours.add(new int[] {a, b, r, n + out.size()});
                        out.add(line);
                    }
                }
            }
        }
    }

    private boolean isKnown(double[] line, List<double[]> lines, double cx, double cy) {
        for (double[] other : lines) {
            if (sameLine(line, other, cx, cy)) return true;
        }
        return false;
    }

    /** {rho, theta} of the line through a and b; null when they are closer than minLength. */
    static double[] lineThrough(double[] a, double[] b, double minLength) {
        double dx = b[0] - a[0], dy = b[1] - a[1];
        double length = Math.hypot(dx, dy);
        if (length < minLength) return null;
        double nx = dy / length, ny = -dx / length;
        return new double[] {nx * a[0] + ny * a[1], Math.atan2(ny, nx)};
    }

    /**
     * A line's supported stretches: the support map read 1 px apart along it, stretches joined
     * across gaps of at most {@code gap} samples, so that {@link #end} finds by binary search
     * where the edge that runs from a point along the line ends: {@code inset} samples (the
     * support map's dilation) before its stretch's last.
     */
    static final class LineRuns {
        final double ux, uy, ox, oy;
        final int half, gap, inset, count;
        final int[] on, first, last;
        /** first and last sample inside the frame: an edge that runs to the border leaves the photo */
        int lo = 0, hi = -1;

        LineRuns(double[] line, boolean[] support, int mapW, int[] frame, int gap, int inset) {
            int x0 = frame[0], y0 = frame[1], w = frame[2], h = frame[3];
            double nx = Math.cos(line[1]), ny = Math.sin(line[1]);
            ux = -ny;
            uy = nx;
            double cx = x0 + w / 2.0, cy = y0 + h / 2.0;
            double off = nx * cx + ny * cy - line[0];  // sample 0 is the line's point nearest the frame centre
            ox = cx - off * nx;
            oy = cy - off * ny;
            half = (int) (Math.hypot(w, h) / 2) + 1;
            this.gap = gap;
            this.inset = inset;
            on = new int[2 * half + 1];
            int k = 0;
            boolean seen = false;
            for (int t = -half; t <= half; t++) {
                int xi = (int) Math.rint(ox + t * ux), yi = (int) Math.rint(oy + t * uy);
                if (!(xi >= x0 && xi < x0 + w && yi >= y0 && yi < y0 + h)) continue;
                if (!seen) lo = t + half;
                seen = true;
                hi = t + half;
                if (support[yi * mapW + xi]) on[k++] = t + half;
            }
            count = k;
            first = new int[k];
            last = new int[k];
            for (int a = 0; a < k; ) {
                int b = a + 1;
                while (b < k && on[b] - on[b - 1] <= gap + 1) b++;
                for (int i = a; i < b; i++) {
                    first[i] = on[a];
                    last[i] = on[b - 1];
                }
                a = b;
            }
        }

        /**
         * Where the stretch that starts within {@code gap} of {@code point} ends, going {@code sign};
         * null when no edge starts there, or when it runs on to the frame's border.
         */
        double[] end(double[] point, int sign) {
            int k = (int) Math.rint((point[0] - ox) * ux + (point[1] - oy) * uy) + half;
            int stop;
            if (sign > 0) {
                int i = lowerBound(k);  // first on-sample >= k
                if (i == count || on[i] - k > gap || last[i] + gap >= hi) return null;
                stop = Math.max(last[i] - inset, k);
            } else {
                int i = lowerBound(k + 1) - 1;  // last on-sample <= k
                if (i < 0 || k - on[i] > gap || first[i] - gap <= lo) return null;
                stop = Math.min(first[i] + inset, k);
            }
            int t = stop - half;
            return new double[] {ox + t * ux, oy + t * uy};
        }

        private int lowerBound(int key) {
            int lo = 0, hi = count;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (on[mid] < key) lo = mid + 1; else hi = mid;
            }
            return lo;
        }
    }

    /**
     * Quads around closed edge outlines (step 5): a page in a busy scene is often a connected
     * outline whose sides are too short to win the Hough vote against the scene's long lines.
     * Each connected group of support pixels whose extreme points span a plausible quad gives
     * four lines, snapped to the edge ridge along each side; so does each enclosed gap between
     * edges that fills the quad of its extreme points (a page's interior), which still works when
     * the outline is joined to a background edge that runs out of the frame. Appended to
     * {@code lines}, with the index quadruple (into {@code lines}) of each appended to {@code fours}.
     */
    void regionQuads(boolean[] support, float[] prob, boolean[] binary, int mapW, int mapH, int[] frame,
                     List<double[]> lines, List<int[]> fours) {
        int x0 = frame[0], y0 = frame[1], w = frame[2], h = frame[3];
        for (double[] quad : enclosedQuads(support, mapW, mapH, frame, 4 * p.minVotesFrac * Math.min(w, h), 0)) {
            double area = Geometry.area(quad);
            if (!(p.minAreaFrac * w * h <= area && area <= 0.8 * w * h)) continue;
            addSnapped(quad, -p.supportTol, prob, binary, mapW, mapH, lines, fours);  // outer rim in to the ridge
        }
        boolean[] gaps = new boolean[mapW * mapH];
        for (int y = y0; y < y0 + h; y++) {
            for (int x = x0; x < x0 + w; x++) gaps[y * mapW + x] = !support[y * mapW + x];
        }
        for (double[] quad : enclosedQuads(gaps, mapW, mapH, frame, 0.25 * p.minAreaFrac * w * h, GAP_FILL)) {
            if (Geometry.area(quad) > 0.8 * w * h) continue;
            addSnapped(quad, p.supportTol, prob, binary, mapW, mapH, lines, fours);  // the gap's rim out to the ridge
        }
    }

    /** An enclosed gap this close to its extreme points' quad is quad-shaped. */
    static final double GAP_FILL = 0.85;

    /**
     * The extreme-point quad of each 4-connected component of {@code mask} with at least
     * {@code minPixels} pixels that does not touch the frame's border (the Hough path with border
     * lines covers those) and has at least {@code minFill} times its quad's area in pixels.
     */
    static List<double[]> enclosedQuads(boolean[] mask, int mapW, int mapH, int[] frame, double minPixels,
                                        double minFill) {
        int x0 = frame[0], y0 = frame[1], w = frame[2], h = frame[3];
        List<double[]> quads = new ArrayList<>();
        int[] labels = new int[mapW * mapH];
        int count = label(mask, mapW, mapH, labels);
        if (count == 0) return quads;
        int[][] stats = regionStats(labels, count, mapW, mapH);
        int[] size = stats[0], minX = stats[1], maxX = stats[2], minY = stats[3], maxY = stats[4];
        int[][] ext = Arrays.copyOfRange(stats, 5, 13);
        for (int k = 1; k <= count; k++) {
            if (size[k] < minPixels) continue;
            if (minX[k] <= x0 || minY[k] <= y0 || maxX[k] >= x0 + w - 1 || maxY[k] >= y0 + h - 1) continue;
            double[] quad = extremeQuad(ext, k, mapW);
            if (size[k] >= minFill * Geometry.area(quad)) quads.add(quad);
        }
        return quads;
    }

    /** Four lines along {@code quad}'s sides moved {@code outward} px and snapped to the ridge. */
    private static void addSnapped(double[] quad, double outward, float[] prob, boolean[] binary, int mapW,
                                   int mapH, List<double[]> lines, List<int[]> fours) {
        int[] four = new int[4];
        double cx = (quad[0] + quad[2] + quad[4] + quad[6]) / 4.0;
        double cy = (quad[1] + quad[3] + quad[5] + quad[7]) / 4.0;
        for (int s = 0; s < 4; s++) {
            double ax = quad[2 * s], ay = quad[2 * s + 1];
            double bx = quad[(2 * s + 2) % 8], by = quad[(2 * s + 3) % 8];
            double nx = by - ay, ny = ax - bx;
            double norm = Math.sqrt(nx * nx + ny * ny) + 1e-9;
            nx /= norm;
            ny /= norm;
            if (nx * (ax - cx) + ny * (ay - cy) < 0) {
                nx = -nx;
                ny = -ny;
            }
            double rho = (nx * ax + ny * ay) + outward;
            four[s] = lines.size();
            lines.add(refineLine(prob, binary, mapW, mapH, rho, Math.atan2(ny, nx)));
        }
        fours.add(four);
    }

    /**
     * One raster pass over {@code labels}: per component k (1..count) its pixel count, bounding
     * box and extreme pixels (index y * mapW + x), as rows {size, minX, maxX, minY, maxY,
     * argmin(x + y), argmax(x - y), argmax(x + y), argmax(y - x), argmin(y), argmax(x), argmax(y),
     * argmin(x)}, each indexed by k. The comparisons are strict, so a tie keeps the first pixel in
     * raster order, as numpy's argmin/argmax over {@code np.nonzero(labels == k)} do.
     */
    static int[][] regionStats(int[] labels, int count, int mapW, int mapH) {
        int[][] stats = new int[13][count + 1];
        int[] size = stats[0], minX = stats[1], maxX = stats[2], minY = stats[3], maxY = stats[4];
        for (int y = 0; y < mapH; y++) {
            for (int x = 0; x < mapW; x++) {
                int i = y * mapW + x;
                int k = labels[i];
                if (k == 0) continue;
                if (size[k]++ == 0) {
                    minX[k] = maxX[k] = x;
                    minY[k] = maxY[k] = y;
                    for (int e = 5; e < 13; e++) stats[e][k] = i;
                    continue;
                }
                if (x + y < px(stats[5][k], mapW) + py(stats[5][k], mapW)) stats[5][k] = i;
                if (x - y > px(stats[6][k], mapW) - py(stats[6][k], mapW)) stats[6][k] = i;
                if (x + y > px(stats[7][k], mapW) + py(stats[7][k], mapW)) stats[7][k] = i;
                if (y - x > py(stats[8][k], mapW) - px(stats[8][k], mapW)) stats[8][k] = i;
                if (y < py(stats[9][k], mapW)) stats[9][k] = i;
                if (x > px(stats[10][k], mapW)) stats[10][k] = i;
                if (y > py(stats[11][k], mapW)) stats[11][k] = i;
                if (x < px(stats[12][k], mapW)) stats[12][k] = i;
                minX[k] = Math.min(minX[k], x);
                maxX[k] = Math.max(maxX[k], x);
                minY[k] = Math.min(minY[k], y);
                maxY[k] = Math.max(maxY[k], y);
            }
        }
        return stats;
    }

    private static int px(int i, int mapW) {
        return i % mapW;
    }

    private static int py(int i, int mapW) {
        return i / mapW;
    }

    /**
     * Component {@code k}'s extreme points along the diagonals or along the axes, whichever
     * encloses more (ties: the diagonals): a rotated page's corners, or an upright page's.
     */
    static double[] extremeQuad(int[][] ext, int k, int mapW) {
        double[] diag = new double[8], axes = new double[8];
        for (int c = 0; c < 4; c++) {
            diag[2 * c] = px(ext[c][k], mapW);
            diag[2 * c + 1] = py(ext[c][k], mapW);
            axes[2 * c] = px(ext[4 + c][k], mapW);
            axes[2 * c + 1] = py(ext[4 + c][k], mapW);
        }
        return Geometry.area(diag) >= Geometry.area(axes) ? diag : axes;
    }

    /**
     * 4-connected components of {@code mask} into {@code labels} (0: background), numbered
     * 1, 2, ... in raster order of each component's first pixel, as {@code scipy.ndimage.label};
     * returns their count.
     */
    static int label(boolean[] mask, int w, int h, int[] labels) {
        int count = 0;
        int[] stack = new int[w * h];
        for (int start = 0; start < w * h; start++) {
            if (!mask[start] || labels[start] != 0) continue;
            count++;
            int top = 0;
            stack[top++] = start;
            labels[start] = count;
            while (top > 0) {
                int i = stack[--top];
                int x = i % w, y = i / w;
                if (x > 0 && mask[i - 1] && labels[i - 1] == 0) { labels[i - 1] = count; stack[top++] = i - 1; }
                if (x < w - 1 && mask[i + 1] && labels[i + 1] == 0) { labels[i + 1] = count; stack[top++] = i + 1; }
                if (y > 0 && mask[i - w] && labels[i - w] == 0) { labels[i - w] = count; stack[top++] = i - w; }
                if (y < h - 1 && mask[i + w] && labels[i + w] == 0) { labels[i + w] = count; stack[top++] = i + w; }
            }
        }
        return count;
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
            double[] line = {idx / N_THETA - diag, THETAS[idx % N_THETA]};
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

    /**
     * The best-scoring plausible candidate as {its 8 corner coordinates (side k from corner k to
     * k + 1), its support, the side on a frame border or -1}, or null. Lines with index &gt;=
     * borderFrom are frame borders; the side on one is not scored.
     */
    private double[] bestQuad(List<double[]> lines, List<int[]> fours, int borderFrom, boolean[] support,
                            float[] page, int[] image, int mapW, int[] frame) {
        double[] best = null;
        double bestScore = Double.NEGATIVE_INFINITY;
        double bestFrac = 0;
        int bestSkip = -1;
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
                if (page != null) {
                    // each sample's page contrast is at most 1: skip quads that lose even with a perfect one
                    if (p.pageWeight >= 0 && score + p.pageWeight * sup[2] <= bestScore) continue;
                    score += p.pageWeight * pageContrast(quad, page, mapW, p.pageOffset, skip, frame);
                }
                if (image != null && p.paperWeight > 0) {
                    if (score + p.paperWeight * sup[2] <= bestScore) continue;  // at most 1 per sample
                    score += p.paperWeight * paperContrast(quad, image, mapW, skip, frame);
                }
                if (sup[0] >= p.minSupport && score > bestScore) {
                    best = quad;
                    bestScore = score;
                    bestFrac = sup[0];
                    bestSkip = skip;
                }
            }
        }
        if (best == null) return null;
        double[] out = Arrays.copyOf(best, 10);
        out[8] = bestFrac;
        out[9] = bestSkip;
        return out;
    }

    private double[] candidate(double[] lp, double[] lq, double[] lr, double[] ls) {
        if (angleBetween(lp[1], lq[1]) > p.maxParallelDeg || angleBetween(lr[1], ls[1]) > p.maxParallelDeg) {
            return null;
        }
        // every corner, not two: which two would depend on the lines' order
        double corner = Math.min(Math.min(angleBetween(lp[1], lr[1]), angleBetween(lp[1], ls[1])),
                                 Math.min(angleBetween(lq[1], lr[1]), angleBetween(lq[1], ls[1])));
        if (corner < p.minPairAngleDeg) return null;
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
        return Geometry.isConvex(q) && Geometry.area(q) >= p.minAreaFrac * h * w && shortestSide(q) >= p.minSidePx;
    }

    private static double shortestSide(double[] q) {
        double shortest = Double.POSITIVE_INFINITY;
        for (int k = 0; k < 4; k++) {
            int j = (k + 3) % 4;
            shortest = Math.min(shortest, Math.hypot(q[2 * k] - q[2 * j], q[2 * k + 1] - q[2 * j + 1]));
        }
        return shortest;
    }

    /**
     * {fraction of in-frame perimeter samples on an edge, number on an edge, number in frame};
     * side skipSide is not scored. {@code frame} (x, y, w, h): the part of the map that shows the photo.
     */
    static double[] perimeterSupport(double[] q, boolean[] support, int mapW, int skipSide, int[] frame) {
        long hits = 0, total = 0;
        for (int k = 0; k < 4; k++) {
            if (k == skipSide) continue;
            long[] side = segmentSupport(q[2 * k], q[2 * k + 1], q[(2 * k + 2) % 8], q[(2 * k + 3) % 8], support,
                    mapW, frame);
            total += side[1];
            hits += side[0];
        }
        return new double[] {total == 0 ? 0.0 : (double) hits / total, hits, total};
    }

    /**
     * The in-frame perimeter samples (as {@link #perimeterSupport} takes them), each as the points
     * {@code offset} px inside and outside the quad along its side's normal: {xIn, yIn, xOut, yOut}.
     */
    static List<double[]> samplePairs(double[] q, double offset, int skipSide, int[] frame) {
        int x0 = frame[0], y0 = frame[1], w = frame[2], h = frame[3];
        double cx = (q[0] + q[2] + q[4] + q[6]) / 4.0, cy = (q[1] + q[3] + q[5] + q[7]) / 4.0;
        List<double[]> out = new ArrayList<>();
        for (int k = 0; k < 4; k++) {
            if (k == skipSide) continue;
            double ax = q[2 * k], ay = q[2 * k + 1], bx = q[(2 * k + 2) % 8], by = q[(2 * k + 3) % 8];
            double nx = by - ay, ny = ax - bx;
            double norm = Math.sqrt(nx * nx + ny * ny) + 1e-9;
            nx /= norm;
            ny /= norm;
            if (nx * (cx - ax) + ny * (cy - ay) < 0) {  // inward
                nx = -nx;
                ny = -ny;
            }
            double ox = offset * nx, oy = offset * ny;
            int n = Math.max((int) Math.hypot(bx - ax, by - ay), 1);
            for (int i = 0; i < n; i++) {
                double t = (i + 0.5) / n;
                double x = ax + t * (bx - ax), y = ay + t * (by - ay);
                int xi = (int) Math.rint(x), yi = (int) Math.rint(y);
                if (xi < x0 || xi >= x0 + w || yi < y0 || yi >= y0 + h) continue;
                out.add(new double[] {x + ox, y + oy, x - ox, y - oy});
            }
        }
        return out;
    }

    /**
     * Sum over the in-frame perimeter samples of page probability {@code offset} px inside the
     * quad minus {@code offset} px outside; read points are clamped into {@code frame}.
     */
    static double pageContrast(double[] q, float[] page, int mapW, double offset, int skipSide, int[] frame) {
        double total = 0;
        for (double[] s : samplePairs(q, offset, skipSide, frame)) {
            total += read(page, mapW, s[0], s[1], frame) - read(page, mapW, s[2], s[3], frame);
        }
        return total;
    }

    /**
     * Sum over the in-frame perimeter samples of how much the pixel {@code paperOffset} px inside
     * looks like the quad's paper (the median colour of all those inside pixels) minus how much the
     * pixel as far outside does: exp(-d^2 / paperSigma^2) of the RGB distance d.
     */
    double paperContrast(double[] q, int[] argb, int mapW, int skipSide, int[] frame) {
        List<int[]> inside = new ArrayList<>(), outside = new ArrayList<>();
        for (double[] s : samplePairs(q, p.paperOffset, skipSide, frame)) {
            inside.add(rgb(argb, mapW, s[0], s[1], frame));
            outside.add(rgb(argb, mapW, s[2], s[3], frame));
        }
        if (inside.isEmpty()) return 0.0;
        double[] paper = new double[3];
        for (int c = 0; c < 3; c++) {
            double[] v = new double[inside.size()];
            for (int i = 0; i < v.length; i++) v[i] = inside.get(i)[c];
            paper[c] = Bands.median(v);
        }
        double s2 = p.paperSigma * p.paperSigma, total = 0;
        for (int i = 0; i < inside.size(); i++) {
            total += Math.exp(-squaredDistance(inside.get(i), paper) / s2)
                    - Math.exp(-squaredDistance(outside.get(i), paper) / s2);
        }
        return total;
    }

    private static double squaredDistance(int[] a, double[] b) {
        double r = a[0] - b[0], g = a[1] - b[1], bl = a[2] - b[2];
        return r * r + g * g + bl * bl;
    }

    /** The RGB pixel nearest (x, y), clamped into {@code frame}. */
    private static int[] rgb(int[] argb, int mapW, double x, double y, int[] frame) {
        int xi = Math.min(Math.max((int) Math.rint(x), frame[0]), frame[0] + frame[2] - 1);
        int yi = Math.min(Math.max((int) Math.rint(y), frame[1]), frame[1] + frame[3] - 1);
        int v = argb[yi * mapW + xi];
        return new int[] {(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff};
    }

    /** The map's value in [0, 1] at the pixel nearest (x, y), clamped into {@code frame}. */
    private static double read(float[] map, int mapW, double x, double y, int[] frame) {
        int xi = Math.min(Math.max((int) Math.rint(x), frame[0]), frame[0] + frame[2] - 1);
        int yi = Math.min(Math.max((int) Math.rint(y), frame[1]), frame[1] + frame[3] - 1);
        return Math.min(Math.max(map[yi * mapW + xi], 0f), 1f);  // probabilities, as the Python finder clips them
    }

    /** {samples on an edge, samples in frame} along a -> b, 1 px apart. */
    static long[] segmentSupport(double ax, double ay, double bx, double by, boolean[] support, int mapW,
                                 int[] frame) {
        int x0 = frame[0], y0 = frame[1], w = frame[2], h = frame[3];
        long hits = 0, total = 0;
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
        return new long[] {hits, total};
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
