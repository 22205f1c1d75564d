package dev.edgepipe.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import org.junit.Test;

public class LatencyStatsTest {
    @Test
    public void exactOnKnownSamples() {
        LatencyStats s = new LatencyStats(new double[] {4, 1, 3, 2, 5});
        assertEquals(5, s.count);
        assertEquals(3.0, s.meanMs, 1e-12);
        assertEquals(Math.sqrt(2.0), s.stdMs, 1e-12);
        assertEquals(3.0, s.p50Ms, 1e-12);
        assertEquals(4.6, s.p90Ms, 1e-12);
        assertEquals(1.0, s.minMs, 1e-12);
        assertEquals(5.0, s.maxMs, 1e-12);
    }

    @Test
    public void matchesNumpyOnPythonVectors() throws IOException {
        List<String> lines = Files.readAllLines(ParityVectorsTest.dir().resolve("latency.csv"), StandardCharsets.UTF_8);
        String[] samples = lines.get(1).split(",");
        double[] ms = new double[samples.length];
        for (int i = 0; i < ms.length; i++) ms[i] = Double.parseDouble(samples[i]);
        String[] want = lines.get(3).split(",");
        LatencyStats s = new LatencyStats(ms);
        double[] got = {s.meanMs, s.stdMs, s.minMs, s.p50Ms, s.p90Ms, s.p99Ms, s.maxMs};
        for (int i = 0; i < got.length; i++) assertEquals(lines.get(2).split(",")[i], Double.parseDouble(want[i]), got[i], 1e-9);
    }

    @Test
    public void jsonHasTheBenchSchemaKeys() {
        String json = new LatencyStats(new double[] {1, 2}).toJson();
        for (String key : new String[] {"count", "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"}) {
            assertTrue(key, json.contains("\"" + key + "\""));
        }
    }
}
