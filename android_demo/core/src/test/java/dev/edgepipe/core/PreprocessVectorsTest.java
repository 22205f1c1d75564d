package dev.edgepipe.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.junit.runners.Parameterized;
import org.junit.runners.Parameterized.Parameters;

/**
 * The preprocessing the app runs on every frame, against Python's on the same photos
 * (scripts/make_android_vectors.py): letterbox geometry exactly, the area-resized pixels within
 * one grey level per channel, and the model input (card normalisation, then the input tensor's
 * quantization) byte for byte, in float32, int8, uint8 and int16.
 */
@RunWith(Parameterized.class)
public class PreprocessVectorsTest {
    static int worstPixelDiff = 0;

    @Parameters(name = "{0}")
    public static Collection<Object[]> rows() throws IOException {
        List<Object[]> out = new ArrayList<>();
        List<String> lines = Files.readAllLines(ParityVectorsTest.dir().resolve("preprocess.csv"), StandardCharsets.UTF_8);
        for (String line : lines.subList(1, lines.size())) {
            if (line.trim().isEmpty()) continue;
            String[] f = line.split(",", -1);
            out.add(new Object[] {f[0] + "_" + f[1], f});
        }
        return out;
    }

    private final String[] f;

    public PreprocessVectorsTest(String label, String[] f) {
        this.f = f;
    }

    private int i(int k) {
        return Integer.parseInt(f[k]);
    }

    private float[] floats(int from) {
        return new float[] {Float.parseFloat(f[from]), Float.parseFloat(f[from + 1]), Float.parseFloat(f[from + 2])};
    }

    private ByteBuffer tensor(float[] x, TensorType type) {
        ByteBuffer buf = ByteBuffer.allocate(x.length * type.bytes).order(ByteOrder.LITTLE_ENDIAN);
        Tensors.write(x, type, Float.parseFloat(f[16]), i(17), buf);
        return buf;
    }

    @Test
    public void matchesPython() throws IOException {
        String name = f[0];
        TensorType type = TensorType.of(f[1]);
        int inW = i(4), inH = i(5);
        float[] scale = floats(10), bias = floats(13);
        Pgm photo = Pgm.read(ParityVectorsTest.dir().resolve("prep_" + name + ".ppm"));
        assertEquals(i(2), photo.width);
        int[] python = Pgm.read(ParityVectorsTest.dir().resolve("prep_" + name + "_boxed.ppm")).argb();
        byte[] want = Files.readAllBytes(ParityVectorsTest.dir().resolve("prep_" + name + "_" + f[1] + ".bin"));

        Preprocess.Boxed java = Preprocess.letterbox(photo.argb(), photo.width, photo.height, inW, inH);
        assertArrayEquals("letterbox geometry", new int[] {i(6), i(7), i(8), i(9)}, java.box.roi());
        for (int p = 0; p < python.length; p++) {
            for (int shift = 0; shift <= 16; shift += 8) {
                int d = Math.abs(((java.argb[p] >> shift) & 0xff) - ((python[p] >> shift) & 0xff));
                worstPixelDiff = Math.max(worstPixelDiff, d);
                assertTrue(name + " pixel " + p + " differs by " + d + " grey levels", d <= 1);
            }
        }
        // normalisation and quantization alone: exact, on Python's own pixels
        assertArrayEquals(name + " " + type, want, tensor(Preprocess.normalize(python, scale, bias), type).array());
        // the whole path: what one grey level can move
        ByteBuffer got = tensor(Preprocess.normalize(java.argb, scale, bias), type);
        got.rewind();
        ByteBuffer ref = ByteBuffer.wrap(want).order(ByteOrder.LITTLE_ENDIAN);
        float[] a = Tensors.read(got, type, 1f, 0, want.length / type.bytes);
        float[] b = Tensors.read(ref, type, 1f, 0, want.length / type.bytes);
        float q = type.quantized() ? Float.parseFloat(f[16]) : 1f;
        float tol = Math.max(scale[0], Math.max(scale[1], scale[2])) / q + (type.quantized() ? 1 : 1e-6f);
        for (int k = 0; k < a.length; k++) assertEquals(name + " element " + k, b[k], a[k], tol);
    }
}
