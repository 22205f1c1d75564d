package dev.edgepipe.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import org.junit.Test;

/** Camera frame rotation, preview mapping and the model-input -> photo -> view chain. */
public class CoordinatesTest {
    // 3 x 2 frame:  a b c
    //               d e f
    static final int[] FRAME = {'a', 'b', 'c', 'd', 'e', 'f'};

    @Test
    public void rotateClockwise90() {
        // upright: d a / e b / f c (2 x 3)
        assertArrayEquals(new int[] {'d', 'a', 'e', 'b', 'f', 'c'}, Rotation.rotate(FRAME, 3, 2, 90));
        assertArrayEquals(new int[] {2, 3}, Rotation.size(3, 2, 90));
    }

    @Test
    public void rotate180And270() {
        assertArrayEquals(new int[] {'f', 'e', 'd', 'c', 'b', 'a'}, Rotation.rotate(FRAME, 3, 2, 180));
        assertArrayEquals(new int[] {'c', 'f', 'b', 'e', 'a', 'd'}, Rotation.rotate(FRAME, 3, 2, 270));
        assertArrayEquals(FRAME, Rotation.rotate(FRAME, 3, 2, 360));
        assertArrayEquals(FRAME, Rotation.rotate(Rotation.rotate(FRAME, 3, 2, 90), 2, 3, -90));
    }

    @Test(expected = IllegalArgumentException.class)
    public void rotationMustBeAQuarterTurn() {
        Rotation.rotate(FRAME, 3, 2, 45);
    }

    @Test
    public void fillCenterCropsTheLongSide() {
        // a 480x640 portrait frame in a 1080x2400 view: scaled by height (3.75), cropped left/right
        ViewTransform t = ViewTransform.fillCenter(480, 640, 1080, 2400);
        assertEquals(3.75, t.scale, 1e-12);
        assertEquals((1080 - 1800) / 2.0, t.dx, 1e-12);
        assertEquals(0, t.dy, 1e-12);
        assertArrayEquals(new double[] {540, 1200}, t.map(new double[] {240, 320}), 1e-9);
    }

    @Test
    public void modelCornersReachTheViewThroughThePhoto() {
        // a 480x640 upright frame letterboxed into 256x256: content x 32..224
        Letterbox box = Letterbox.of(640, 480, 256, 256);
        ViewTransform t = ViewTransform.fillCenter(480, 640, 1080, 1440);  // same aspect: no crop
        double[] view = t.map(box.toPhoto(new double[] {32, 0, 224, 256, 128, 128}));
        assertArrayEquals(new double[] {0, 0, 1080, 1440, 540, 720}, view, 1e-9);
    }

    @Test
    public void outputNamesStayInTheAppsFolder() {
        assertTrue(SafeNames.isPlainFileName("bench.json"));
        assertTrue(SafeNames.isPlainFileName("parity_out-1.bin"));
        for (String bad : new String[] {null, "", "../x", "/sdcard/x", "a/b", ".hidden", "..", "a..b", "x\n"}) {
            assertFalse(String.valueOf(bad), SafeNames.isPlainFileName(bad));
        }
    }
}
