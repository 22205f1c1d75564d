package dev.edgepipe.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import org.junit.Test;
import org.junit.runner.RunWith;
import org.junit.runners.Parameterized;
import org.junit.runners.Parameterized.Parameters;

/**
 * Cross-language parity: every vector written by scripts/make_android_vectors.py must give
 * the Python quad finder's corners within 1 px, and the same "not found" cases, with the same
 * roi (the content of a letterboxed input) where the vector has one.
 */
@RunWith(Parameterized.class)
public class ParityVectorsTest {
    static final double TOLERANCE_PX = 1.0;
    static double worstDiff = 0;

    static Path dir() {
        return Paths.get(System.getProperty("parity.dir", "src/test/resources/parity"));
    }

    @Parameters(name = "{0}")
    public static Collection<Object[]> vectors() throws IOException {
        List<Object[]> out = new ArrayList<>();
        List<String> lines = Files.readAllLines(dir().resolve("expected.csv"), StandardCharsets.UTF_8);
        for (String line : lines.subList(1, lines.size())) {
            if (!line.trim().isEmpty()) out.add(new Object[] {line.split(",", -1)[0], line});
        }
        return out;
    }

    private final String name;
    private final String row;

    public ParityVectorsTest(String name, String row) {
        this.name = name;
        this.row = row;
    }

    @Test
    public void javaFindsWhatPythonFound() throws IOException {
        String[] f = row.split(",", -1);
        boolean expectFound = f[1].equals("1");
        Pgm pgm = Pgm.read(dir().resolve(name + ".pgm"));
        int[] roi = null;
        if (f.length >= 14 && !f[10].isEmpty()) {
            roi = new int[4];
            for (int i = 0; i < 4; i++) roi[i] = Integer.parseInt(f[10 + i]);
        }
        Path pagePath = dir().resolve(name + ".page.pgm");  // the page-region map, for a model that has one
        float[] page = Files.exists(pagePath) ? Pgm.read(pagePath).probabilities() : null;
        Path imagePath = dir().resolve(name + ".image.ppm");  // the input image, for step 9 (printed bands)
        int[] image = Files.exists(imagePath) ? Pgm.read(imagePath).argb() : null;
        QuadFinder.Result r = new QuadFinder().find(pgm.probabilities(), pgm.width, pgm.height, roi, page, image);
        assertEquals(name + ": found? (" + r.reason + ")", expectFound, r.found());
        if (!expectFound) return;
        assertNotNull(r.corners);
        for (int i = 0; i < 8; i++) {
            double diff = Math.abs(r.corners[i] - Double.parseDouble(f[2 + i]));
            worstDiff = Math.max(worstDiff, diff);
            assertTrue(name + " coordinate " + i + " differs by " + diff + " px", diff <= TOLERANCE_PX);
        }
    }
}
