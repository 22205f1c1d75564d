package dev.edgepipe.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class PreprocessTest {
    @Test
    public void identitySizeNormalisesToUnitRange() {
        int[] img = {0xff000000, 0xffffffff, 0xff808080, 0xff102030};
        Preprocess.Boxed b = Preprocess.letterbox(img, 2, 2, 2, 2);
        float[] x = Preprocess.normalize(b.argb, 1 / 255f, 0f);
        assertEquals(12, x.length);
        assertEquals(0f, x[0], 1e-6);
        assertEquals(1f, x[3], 1e-6);
        assertEquals(0x10 / 255f, x[9], 1e-6);
        assertEquals(0x30 / 255f, x[11], 1e-6);
    }

    @Test
    public void integerShrinkAveragesBlocks() {
        int[] img = {0xff000000, 0xff0000ff, 0xff000000, 0xff0000fe};  // blue 0 | 255, 0 | 254
        int[] out = AreaResize.resize(img, 2, 2, 1, 1);
        assertEquals((255 + 254 + 2) >> 2, out[0] & 0xff);  // OpenCV's 2x2 rounding: (sum + 2) >> 2
    }

    @Test
    public void letterboxCentresTheContentBetweenBlackBands() {
        int[] img = new int[8 * 4];
        java.util.Arrays.fill(img, 0xffffffff);
        Preprocess.Boxed b = Preprocess.letterbox(img, 8, 4, 4, 4);  // 2:1 into a square: rows 1..2
        assertArrayEquals(new int[] {0, 1, 4, 2}, b.box.roi());
        assertEquals(0xff000000, b.argb[0]);
        assertEquals(0xffffffff, b.argb[4]);
        assertEquals(0xffffffff, b.argb[11]);
        assertEquals(0xff000000, b.argb[12]);
    }

    @Test
    public void perChannelNormalisation() {
        float[] x = Preprocess.normalize(new int[] {0xff7f7f7f}, new float[] {1f, 2f, 3f}, new float[] {0f, -1f, -2f});
        assertArrayEquals(new float[] {127f, 253f, 379f}, x, 0f);
    }
}
