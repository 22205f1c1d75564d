package dev.edgepipe.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.io.IOException;
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
 * Auto-exposure of dark frames against Python's {@code scan.expose} on the same letterboxed
 * photos (scripts/make_android_vectors.py, exposure.csv): the same gain, and the same bytes.
 */
@RunWith(Parameterized.class)
public class ExposureVectorsTest {
    @Parameters(name = "{0}")
    public static Collection<Object[]> rows() throws IOException {
        List<Object[]> out = new ArrayList<>();
        List<String> lines = Files.readAllLines(ParityVectorsTest.dir().resolve("exposure.csv"), StandardCharsets.UTF_8);
        for (String line : lines.subList(1, lines.size())) {
            if (!line.trim().isEmpty()) out.add(new Object[] {line.split(",", -1)[0], line.split(",", -1)});
        }
        return out;
    }

    private final String[] f;

    public ExposureVectorsTest(String label, String[] f) {
        this.f = f;
    }

    @Test
    public void matchesPython() throws IOException {
        int stride = Integer.parseInt(f[1]);
        int x = Integer.parseInt(f[2]), y = Integer.parseInt(f[3]), w = Integer.parseInt(f[4]), h = Integer.parseInt(f[5]);
        Letterbox box = new Letterbox(x, y, w, h, w, h);
        int[] boxed = Pgm.read(ParityVectorsTest.dir().resolve("expose_" + f[0] + ".ppm")).argb();
        int[] want = Pgm.read(ParityVectorsTest.dir().resolve("expose_" + f[0] + "_out.ppm")).argb();
        assertEquals(f[0] + " gain", Double.parseDouble(f[6]), Preprocess.exposureGain(boxed, stride, box), 0.0);
        assertArrayEquals(f[0] + " exposed pixels", want, Preprocess.expose(new Preprocess.Boxed(boxed, box), stride).argb);
    }
}
