package dev.edgepipe.core;

import java.util.Arrays;
import java.util.Locale;

/**
 * Latency statistics in the same schema as {@code edgepipe bench} (evaluate/latency.py):
 * count, mean, std (population), min, p50, p90, p99, max in milliseconds. Percentiles
 * interpolate linearly between order statistics, as numpy's default.
 */
public final class LatencyStats {
    public final int count;
    public final double meanMs, stdMs, minMs, p50Ms, p90Ms, p99Ms, maxMs;

    public LatencyStats(double[] samplesMs) {
        if (samplesMs.length == 0) throw new IllegalArgumentException("no samples");
        double[] s = samplesMs.clone();
        Arrays.sort(s);
        count = s.length;
        double sum = 0;
        for (double v : s) sum += v;
        meanMs = sum / count;
        double sq = 0;
        for (double v : s) sq += (v - meanMs) * (v - meanMs);
        stdMs = Math.sqrt(sq / count);
        minMs = s[0];
        maxMs = s[count - 1];
        p50Ms = percentile(s, 50);
        p90Ms = percentile(s, 90);
        p99Ms = percentile(s, 99);
    }

    /** Linear-interpolation percentile of sorted data (numpy "linear" method). */
    public static double percentile(double[] sorted, double q) {
        double pos = (sorted.length - 1) * q / 100.0;
        int lo = (int) Math.floor(pos), hi = (int) Math.ceil(pos);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }

    /** The statistics block of a bench result, as JSON. */
    public String toJson() {
        return String.format(Locale.ROOT,
                "{\"count\": %d, \"mean_ms\": %.6f, \"std_ms\": %.6f, \"min_ms\": %.6f, \"p50_ms\": %.6f, "
                        + "\"p90_ms\": %.6f, \"p99_ms\": %.6f, \"max_ms\": %.6f}",
                count, meanMs, stdMs, minMs, p50Ms, p90Ms, p99Ms, maxMs);
    }
}
