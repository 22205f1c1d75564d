package dev.edgepipe.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import org.junit.Test;

/** Letterbox geometry and coordinate mapping against Python's scan.Letterbox (letterbox.csv). */
public class LetterboxTest {
    @Test
    public void geometryAndMappingMatchPython() throws IOException {
        List<String> lines = Files.readAllLines(ParityVectorsTest.dir().resolve("letterbox.csv"), StandardCharsets.UTF_8);
        int checked = 0;
        for (String line : lines.subList(1, lines.size())) {
            if (line.trim().isEmpty()) continue;
            double[] v = new double[line.split(",").length];
            String[] f = line.split(",");
            for (int i = 0; i < f.length; i++) v[i] = Double.parseDouble(f[i]);
            Letterbox box = Letterbox.of((int) v[1], (int) v[0], (int) v[3], (int) v[2]);
            assertArrayEquals(line, new int[] {(int) v[4], (int) v[5], (int) v[6], (int) v[7]}, box.roi());
            double[] in = java.util.Arrays.copyOfRange(v, 8, 18), want = java.util.Arrays.copyOfRange(v, 18, 28);
            double[] got = box.toPhoto(in);
            for (int i = 0; i < 10; i++) assertEquals(line, want[i], got[i], 1e-3 * Math.max(1, Math.abs(want[i])));
            assertArrayEquals(in, box.toInput(got), 1e-9 * 1e4);
            checked++;
        }
        assertEquals(11, checked);
    }

    @Test
    public void portraitFrameGetsSideBands() {
        Letterbox box = Letterbox.of(640, 480, 256, 256);
        assertArrayEquals(new int[] {32, 0, 192, 256}, box.roi());
        assertArrayEquals(new double[] {0, 0, 480, 640}, box.toPhoto(new double[] {32, 0, 224, 256}), 1e-9);
    }
}
