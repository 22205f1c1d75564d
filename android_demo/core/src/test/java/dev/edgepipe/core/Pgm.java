package dev.edgepipe.core;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Minimal binary PGM (P5, 8-bit) reader for the parity vectors. */
final class Pgm {
    final int width, height;
    final byte[] data;

    private Pgm(int width, int height, byte[] data) {
        this.width = width;
        this.height = height;
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
        if (!header[0].equals("P5")) throw new IOException(path + ": not a binary PGM");
        int w = Integer.parseInt(header[1]), h = Integer.parseInt(header[2]);
        byte[] data = new byte[w * h];
        System.arraycopy(raw, pos, data, 0, w * h);
        return new Pgm(w, h, data);
    }

    /** Probabilities exactly as Python computes them: float32(byte) / 255. */
    float[] probabilities() {
        float[] p = new float[data.length];
        for (int i = 0; i < data.length; i++) p[i] = (data[i] & 0xff) / 255f;
        return p;
    }
}
