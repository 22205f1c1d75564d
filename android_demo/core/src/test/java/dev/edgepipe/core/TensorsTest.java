package dev.edgepipe.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.Test;

/** Every input type the pipeline writes: float32, int8, uint8, int16 (int16x8). */
public class TensorsTest {
    static ByteBuffer write(float[] x, TensorType t, float scale, int zero) {
        ByteBuffer b = ByteBuffer.allocate(x.length * t.bytes).order(ByteOrder.LITTLE_ENDIAN);
        Tensors.write(x, t, scale, zero, b);
        b.rewind();
        return b;
    }

    @Test
    public void int8MatchesTfliteParameters() {
        // the HED int8 input: scale 1/255, zero point -128 -> pixel p maps to p - 128
        ByteBuffer b = write(new float[] {0f, 1f, 128 / 255f, 2f, -1f}, TensorType.INT8, 1 / 255f, -128);
        assertArrayEquals(new byte[] {-128, 127, 0, 127, -128}, b.array());
    }

    @Test
    public void uint8KeepsTheFullRange() {
        ByteBuffer b = write(new float[] {0f, 1f, 128 / 255f, -0.1f}, TensorType.UINT8, 1 / 255f, 0);
        assertArrayEquals(new int[] {0, 255, 128, 0},
                new int[] {b.get(0) & 0xff, b.get(1) & 0xff, b.get(2) & 0xff, b.get(3) & 0xff});
    }

    @Test
    public void int16DoesNotOverflowAByte() {
        ByteBuffer b = write(new float[] {1f, -1f, 3f}, TensorType.INT16, 1 / 32768f, 0);
        assertEquals(32767, b.getShort());   // 32768 clamps
        assertEquals(-32768, b.getShort());
        assertEquals(32767, b.getShort());
    }

    @Test
    public void roundsHalfToEvenAsNumpy() {
        assertEquals(2, Tensors.quantize(2.5f, 1f, 0, TensorType.INT8));
        assertEquals(4, Tensors.quantize(3.5f, 1f, 0, TensorType.INT8));
        assertEquals(-2, Tensors.quantize(-2.5f, 1f, 0, TensorType.INT8));
    }

    @Test
    public void float32IsWrittenAsIs() {
        ByteBuffer b = write(new float[] {0.25f, -3f}, TensorType.FLOAT32, 0f, 0);
        assertEquals(0.25f, b.getFloat(), 0f);
        assertEquals(-3f, b.getFloat(), 0f);
    }

    @Test
    public void outputsDequantize() {
        ByteBuffer b = ByteBuffer.wrap(new byte[] {-128, 0, 127});
        assertArrayEquals(new float[] {0f, 0.5f, 255 / 256f},
                Tensors.read(b, TensorType.INT8, 1 / 256f, -128, 3), 1e-7f);
        ByteBuffer s = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putShort((short) -2).putShort((short) 4);
        s.rewind();
        assertArrayEquals(new float[] {-1f, 2f}, Tensors.read(s, TensorType.INT16, 0.5f, 0, 2), 0f);
    }

    @Test
    public void scaleZeroIsNotQuantized() {
        // a model that takes uint8 pixels: TFLite says scale 0, and x / 0 made every pixel 255
        assertEquals(128, Tensors.quantize(127.6f, 0f, 0, TensorType.UINT8));
        assertEquals(255, Tensors.quantize(300f, 0f, 0, TensorType.UINT8));
        ByteBuffer b = ByteBuffer.wrap(new byte[] {(byte) 200, 3});
        assertArrayEquals(new float[] {200f, 3f}, Tensors.read(b, TensorType.UINT8, 0f, 0, 2), 0f);
    }

    @Test
    public void typesByNumpyName() {
        for (TensorType t : TensorType.values()) assertEquals(t, TensorType.of(t.numpyName()));
    }

    @Test(expected = IllegalArgumentException.class)
    public void unknownTypeIsRefusedByName() {
        TensorType.of("float64");
    }
}
