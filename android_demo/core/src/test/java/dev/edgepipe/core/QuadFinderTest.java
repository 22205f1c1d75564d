package dev.edgepipe.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import org.junit.Test;

public class QuadFinderTest {
    static float[] drawQuad(double[] q, int size, int thickness) {
        float[] m = new float[size * size];
        for (int k = 0; k < 4; k++) {
            double ax = q[2 * k], ay = q[2 * k + 1], bx = q[(2 * k + 2) % 8], by = q[(2 * k + 3) % 8];
            int n = (int) Math.ceil(Math.hypot(bx - ax, by - ay) * 2);
            for (int i = 0; i <= n; i++) {
                double x = ax + (bx - ax) * i / n, y = ay + (by - ay) * i / n;
                for (int d = 0; d < thickness; d++) {
                    int xi = (int) Math.round(x), yi = (int) Math.round(y) + d;
                    if (xi >= 0 && xi < size && yi >= 0 && yi < size) m[yi * size + xi] = 1f;
                }
            }
        }
        return m;
    }

    @Test
    public void findsADrawnRotatedQuad() {
        double[] q = {70, 20, 230, 70, 180, 240, 20, 190};
        QuadFinder.Result r = new QuadFinder().find(drawQuad(q, 256, 2), 256, 256);
        assertTrue(r.reason, r.found());
        for (int i = 0; i < 8; i++) assertEquals(q[i], r.corners[i], 2.0);
    }

    @Test
    public void edgesOutsideTheRoiAreIgnored() {
        float[] m = drawQuad(new double[] {70, 20, 230, 70, 180, 240, 20, 190}, 256, 2);
        QuadFinder.Result r = new QuadFinder().find(m, 256, 256, new int[] {0, 0, 10, 10});
        assertFalse(r.found());
        assertEquals("too few edge pixels", r.reason);
    }

    @Test
    public void roiIsClippedToTheMapAsInPython() {
        assertArrayEquals(new int[] {0, 0, 64, 48}, QuadFinder.frame(null, 64, 48));
        assertArrayEquals(new int[] {0, 5, 64, 43}, QuadFinder.frame(new int[] {-3, 5, 100, 100}, 64, 48));
        assertArrayEquals(new int[] {63, 47, 1, 1}, QuadFinder.frame(new int[] {70, 50, 10, 10}, 64, 48));
    }

    @Test
    public void componentsAreNumberedInRasterOrderOfTheirFirstPixel() {
        // a U whose right arm starts first on row 0 but whose first pixel is the left arm's,
        // and a dot that starts on row 0 after it: numbered as scipy.ndimage.label numbers them
        String[] rows = {
            "#.#.#",
            "#.#..",
            "###.#",
        };
        int w = 5, h = 3;
        boolean[] mask = new boolean[w * h];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) mask[y * w + x] = rows[y].charAt(x) == '#';
        int[] labels = new int[w * h];
        assertEquals(3, QuadFinder.label(mask, w, h, labels));
        assertArrayEquals(new int[] {1, 0, 1, 0, 2, 1, 0, 1, 0, 0, 1, 1, 1, 0, 3}, labels);
    }

    @Test
    public void extremePointTiesKeepTheFirstPixelInRasterOrder() {
        // an upright square outline: every extreme ties along a side or at a corner; numpy's
        // argmin/argmax over np.nonzero(labels == k) take the first such pixel in raster order
        int w = 12, h = 12;
        boolean[] mask = new boolean[w * h];
        for (int i = 2; i <= 9; i++) {
            mask[2 * w + i] = mask[9 * w + i] = mask[i * w + 2] = mask[i * w + 9] = true;
        }
        int[] labels = new int[w * h];
        assertEquals(1, QuadFinder.label(mask, w, h, labels));
        int[][] stats = QuadFinder.regionStats(labels, 1, w, h);
        int[] want = {28, 2, 9, 2, 9,                                   // size, minX, maxX, minY, maxY
            2 * w + 2, 2 * w + 9, 9 * w + 9, 9 * w + 2,                 // diagonals
            2 * w + 2, 2 * w + 9, 9 * w + 2, 2 * w + 2};                // axes: first of each tied side
        for (int e = 0; e < want.length; e++) assertEquals("row " + e, want[e], stats[e][1]);
        int[][] ext = java.util.Arrays.copyOfRange(stats, 5, 13);
        // the diagonals' quad (the square) encloses more than the axes' (a triangle)
        assertArrayEquals(new double[] {2, 2, 9, 2, 9, 9, 2, 9}, QuadFinder.extremeQuad(ext, 1, w), 0);
    }

    @Test
    public void aSmallPageAmongShelvesNeedsRegionQuads() throws IOException {
        Pgm pgm = Pgm.read(ParityVectorsTest.dir().resolve("region_page_among_shelves.pgm"));
        QuadFinder.Params params = new QuadFinder.Params();
        assertTrue(new QuadFinder(params).find(pgm.probabilities(), pgm.width, pgm.height).found());
        params.regions = false;
        QuadFinder.Result r = new QuadFinder(params).find(pgm.probabilities(), pgm.width, pgm.height);
        assertFalse(r.found());
        assertEquals("no plausible quadrilateral", r.reason);
    }

    @Test
    public void blankMapIsNotFound() {
        QuadFinder.Result r = new QuadFinder().find(new float[64 * 64], 64, 64);
        assertFalse(r.found());
        assertEquals("too few edge pixels", r.reason);
    }

    @Test
    public void aMapThatIsMostlyEdgeIsNoPage() {
        float[] m = new float[128 * 160];
        for (int i = 0; i < m.length; i++) m[i] = (i / 160) % 7 == 0 ? 0.2f : 0.6f;
        QuadFinder.Result r = new QuadFinder().find(m, 160, 128);
        assertFalse(r.found());
        assertTrue(r.reason, r.reason.startsWith("edge map saturated"));
    }

    @Test
    public void nanIsRejected() {
        float[] m = new float[32 * 32];
        m[5] = Float.NaN;
        assertFalse(new QuadFinder().find(m, 32, 32).found());
    }

    @Test
    public void orderCornersStartsTopLeftAndGoesClockwise() {
        double[] shuffled = {180, 240, 70, 20, 20, 190, 230, 70};
        assertArrayEquals(new double[] {70, 20, 230, 70, 180, 240, 20, 190}, Geometry.orderCorners(shuffled), 1e-9);
    }

    @Test
    public void smallestEigenvectorIsTheNormalOfAHorizontalLine() {
        double[] n = QuadFinder.smallestEigenvector(100, 0, 1);
        assertEquals(0, n[0], 1e-12);
        assertEquals(1, Math.abs(n[1]), 1e-12);
    }

    @Test
    public void intersectionOfAxisLines() {
        double[] p = QuadFinder.intersect(new double[] {10, 0}, new double[] {20, Math.PI / 2});
        assertEquals(10, p[0], 1e-9);
        assertEquals(20, p[1], 1e-9);
    }
}
