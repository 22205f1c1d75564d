package dev.edgepipe.core;

/**
 * The input and output element types edgepipe's TFLite exports use: float32 (float32, float16
 * and dynamic-range models), int8 (full-int8), uint8, and int16 (int16x8: int16 activations,
 * int8 weights). Names are numpy's, as model_card.json writes them.
 */
public enum TensorType {
    FLOAT32(4, 0, 0),
    INT8(1, -128, 127),
    UINT8(1, 0, 255),
    INT16(2, -32768, 32767);

    public final int bytes;
    public final int min, max;

    TensorType(int bytes, int min, int max) {
        this.bytes = bytes;
        this.min = min;
        this.max = max;
    }

    public boolean quantized() {
        return this != FLOAT32;
    }

    /** "float32", "int8", "uint8", "int16" (numpy's names); anything else is refused by name. */
    public static TensorType of(String name) {
        switch (name) {
            case "float32": return FLOAT32;
            case "int8": return INT8;
            case "uint8": return UINT8;
            case "int16": return INT16;
            default: throw new IllegalArgumentException("unsupported tensor type '" + name
                    + "' (the app handles float32, int8, uint8 and int16)");
        }
    }

    public String numpyName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
