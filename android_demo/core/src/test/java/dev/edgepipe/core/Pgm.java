package dev.edgepipe.core;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Minimal binary PGM (P5) and PPM (P6) reader, 8-bit, for the parity vectors. */
final class Pgm {
    final int width, height, channels;
    final byte[] data;

    private Pgm(int width, int height, int channels, byte[] data) {
        this.width = width;
        this.height = height;
        this.channels = channels;
        this.data = data;
    }

    static Pgm read(Path path) throws IOException {
        byte[] raw = Files.readAllBytes(path);
        int pos = 0;
        String[] header = new String[4];
        for (int field = 0; field < 4; field++) {
            while (Character.isWhitespace(raw[pos])) pos++;
            int start = pos;
            while (!Character.isWhitespace(raw[pos])) pos++;
            header[field] = new String(raw, start, pos - start, "US-ASCII");
        }
        pos++;  // the single whitespace after maxval
        int channels = header[0].equals("P5") ? 1 : header[0].equals("P6") ? 3 : 0;
        if (channels == 0) throw new IOException(path + ": not a binary PGM or PPM");
        int w = Integer.parseInt(header[1]), h = Integer.parseInt(header[2]);
        byte[] data = new byte[w * h * channels];
        System.arraycopy(raw, pos, data, 0, data.length);
        return new Pgm(w, h, channels, data);
    }

    /** A PPM's pixels as packed ARGB (alpha 255), Android's Bitmap.getPixels layout. */
    int[] argb() {
        int[] out = new int[width * height];
        for (int i = 0; i < out.length; i++) {
            out[i] = 0xff000000 | (data[3 * i] & 0xff) << 16 | (data[3 * i + 1] & 0xff) << 8 | (data[3 * i + 2] & 0xff);
        }
        return out;
    }

    /** Probabilities exactly as Python computes them: float32(byte) / 255. */
    float[] probabilities() {
        float[] p = new float[data.length];
        for (int i = 0; i < data.length; i++) p[i] = (data[i] & 0xff) / 255f;
        return p;
    }
}
