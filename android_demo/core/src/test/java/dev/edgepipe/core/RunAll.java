package dev.edgepipe.core;

import org.junit.runner.JUnitCore;
import org.junit.runner.Result;
import org.junit.runner.notification.Failure;

/** Runs every test class and prints one summary line that CI reads. */
public final class RunAll {
    public static void main(String[] args) {
        Result r = JUnitCore.runClasses(ParityVectorsTest.class, PreprocessVectorsTest.class, ExposureVectorsTest.class,
                LetterboxTest.class, QuadFinderTest.class, PerspectiveTest.class, PreprocessTest.class,
                TensorsTest.class, CoordinatesTest.class, LatencyStatsTest.class);
        for (Failure f : r.getFailures()) System.out.println("FAILED " + f.getTestHeader() + ": " + f.getMessage());
        System.out.printf("parity vectors: worst corner difference %.4f px, worst letterboxed pixel difference %d "
                + "grey level(s)%n", ParityVectorsTest.worstDiff, PreprocessVectorsTest.worstPixelDiff);
        int passed = r.getRunCount() - r.getFailureCount();
        System.out.println("junit: " + passed + " passed, " + r.getFailureCount() + " failed");
        System.exit(r.wasSuccessful() ? 0 : 1);
    }
}
