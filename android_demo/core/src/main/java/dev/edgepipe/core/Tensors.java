package dev.edgepipe.core;

import java.nio.ByteBuffer;

/**
 * Writing model inputs and reading model outputs in any {@link TensorType}, with the tensor's
 * own scale and zero point, exactly as edgepipe's Python TFLite runner does: an input is
 * {@code clip(round(x / scale + zero_point))} (round half to even, in float32), an output
 * {@code (q - zero_point) * scale}.
 */
public final class Tensors {
    private Tensors() {}

    /**
     * One quantized value, as numpy computes it: float32 division and addition, then rint. Scale 0
     * is TFLite's "not quantized" (a model that takes uint8 pixels): the value is rounded as it is.
     */
    public static int quantize(float x, float scale, int zeroPoint, TensorType type) {
        double q = scale == 0f ? Math.rint(x) : Math.rint(x / scale + (float) zeroPoint);
        return (int) Math.max(type.min, Math.min(type.max, q));
    }

    /** Put {@code x} into {@code out} at its position, converting to {@code type}; float32 ignores scale. */
    public static void write(float[] x, TensorType type, float scale, int zeroPoint, ByteBuffer out) {
        for (float v : x) {
            switch (type) {
                case FLOAT32: out.putFloat(v); break;
                case INT8: case UINT8: out.put((byte) quantize(v, scale, zeroPoint, type)); break;
                case INT16: out.putShort((short) quantize(v, scale, zeroPoint, type)); break;
                default: throw new AssertionError(type);
            }
        }
    }

    /** {@code n} values from {@code in} at its position, dequantized to float (scale 0: as they are). */
    public static float[] read(ByteBuffer in, TensorType type, float scale, int zeroPoint, int n) {
        if (scale == 0f) {  // not quantized: the integers are the values
            scale = 1f;
            zeroPoint = 0;
        }
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            switch (type) {
                case FLOAT32: out[i] = in.getFloat(); break;
                case INT8: out[i] = (in.get() - zeroPoint) * scale; break;
                case UINT8: out[i] = ((in.get() & 0xff) - zeroPoint) * scale; break;
                case INT16: out[i] = (in.getShort() - zeroPoint) * scale; break;
                default: throw new AssertionError(type);
            }
        }
        return out;
    }
}
