package dev.edgepipe.core;

import static org.junit.Assert.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import org.junit.Test;

public class PerspectiveTest {
    @Test
    public void homographyMapsEachSourceCornerOntoItsTarget() {
        double[] src = {0, 0, 99, 0, 99, 149, 0, 149};
        double[] dst = {12.5, 30, 200, 10, 230, 230, 20, 240};
        double[] h = Perspective.transform(src, dst);
        for (int k = 0; k < 4; k++) {
            double[] p = Perspective.apply(h, src[2 * k], src[2 * k + 1]);
            assertEquals(dst[2 * k], p[0], 1e-9);
            assertEquals(dst[2 * k + 1], p[1], 1e-9);
        }
    }

    @Test
    public void homographyMatchesOpenCV() throws IOException {
        List<String> lines = Files.readAllLines(ParityVectorsTest.dir().resolve("perspective.csv"),
                StandardCharsets.UTF_8);
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split(",");
            double[] src = new double[8], dst = new double[8];
            for (int i = 0; i < 8; i++) {
                src[i] = Double.parseDouble(f[i]);
                dst[i] = Double.parseDouble(f[8 + i]);
            }
            double[] h = Perspective.transform(src, dst);
            for (int i = 0; i < 9; i++) assertEquals("H[" + i + "]", Double.parseDouble(f[16 + i]), h[i], 1e-4);  // OpenCV takes float32 points
        }
    }

    @Test
    public void rectifyingAnAxisAlignedPageCropsIt() {
        int w = 40, h = 30;
        int[] img = new int[w * h];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) img[y * w + x] = 0xff000000 | (x << 16) | (y << 8);
        double[] corners = {10, 5, 29, 5, 29, 24, 10, 24};
        int[] size = Perspective.pageSize(corners);
        assertEquals(19, size[0]);
        int[] page = Perspective.rectify(img, w, h, corners, 20, 20);
        assertEquals(10, (page[0] >> 16) & 0xff);
        assertEquals(5, (page[0] >> 8) & 0xff);
        assertEquals(29, (page[20 * 20 - 1] >> 16) & 0xff);
        assertEquals(24, (page[20 * 20 - 1] >> 8) & 0xff);
    }
}
