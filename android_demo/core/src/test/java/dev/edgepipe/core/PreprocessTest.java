package dev.edgepipe.core;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class PreprocessTest {
    @Test
    public void identityResizeNormalisesToUnitRange() {
        int[] img = {0xff000000, 0xffffffff, 0xff808080, 0xff102030};
        float[] x = Preprocess.toInput(img, 2, 2, 2, 2, 1 / 255f, 0f);
        assertEquals(12, x.length);
        assertEquals(0f, x[0], 1e-6);
        assertEquals(1f, x[3], 1e-6);
        assertEquals(0x10 / 255f, x[9], 1e-6);
        assertEquals(0x30 / 255f, x[11], 1e-6);
    }

    @Test
    public void downscaleAveragesNeighbours() {
        int[] img = {0xff000000, 0xff0000ff, 0xff000000, 0xff0000ff};  // blue 0 | 255 columns
        float[] x = Preprocess.toInput(img, 2, 2, 1, 1, 1f, 0f);
        assertEquals(127.5f, x[2], 1.0f);
    }

    @Test
    public void int8QuantizationMatchesTfliteParameters() {
        // the HED int8 input: scale 1/255, zero point -128 -> pixel p maps to p - 128
        byte[] q = Preprocess.quantize(new float[] {0f, 1f, 128 / 255f}, 1 / 255f, -128);
        assertEquals(-128, q[0]);
        assertEquals(127, q[1]);
        assertEquals(0, q[2]);
    }
}
