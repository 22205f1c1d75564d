package dev.edgepipe.demo

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.os.SystemClock
import android.util.Log
import dev.edgepipe.core.LatencyStats
import org.tensorflow.lite.TensorFlowLite
import java.io.File
import java.security.MessageDigest
import java.util.Locale

/**
 * Benchmark mode, driven over adb:
 *
 *   adb shell am start -W -n dev.edgepipe.demo/.BenchmarkActivity \
 *     --es model /data/local/tmp/model.tflite --ei threads 4 --es delegate xnnpack \
 *     --ei warmup 10 --ei runs 50 --es out bench.json
 *
 * It writes one result in edgepipe's bench schema to the app's external files dir
 * (pulled with `adb pull /sdcard/Android/data/dev.edgepipe.demo/files/bench.json`),
 * logs "EDGEPIPE_BENCH_DONE <path>" and finishes.
 */
class BenchmarkActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val e = intent.extras ?: Bundle()
        val modelPath = e.getString("model") ?: return fail("missing --es model PATH")
        val threads = e.getInt("threads", 4)
        val delegate = e.getString("delegate", "xnnpack")
        val warmup = e.getInt("warmup", 10)
        val runs = e.getInt("runs", 50)
        val out = File(getExternalFilesDir(null), e.getString("out", "bench.json"))
        Thread {
            try {
                File(out.path).writeText(run(modelPath, threads, delegate, warmup, runs))
                Log.i(TAG, "EDGEPIPE_BENCH_DONE ${out.absolutePath}")
            } catch (t: Throwable) {
                Log.e(TAG, "EDGEPIPE_BENCH_FAILED ${t.message}")
            }
            finish()
        }.start()
    }

    private fun run(modelPath: String, threads: Int, delegate: String, warmup: Int, runs: Int): String {
        val options = RunOptions(threads = threads, xnnpack = delegate == "xnnpack", gpu = delegate == "gpu")
        val t0 = SystemClock.elapsedRealtimeNanos()
        val card = ModelCard("", 0, 0, 1f, 0f, "")  // benchmark feeds zeros; card not needed
        EdgeDetector(EdgeDetector.loadFile(modelPath), card, options).use { det ->
            val initMs = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6
            val t1 = SystemClock.elapsedRealtimeNanos()
            det.invoke()
            val firstMs = (SystemClock.elapsedRealtimeNanos() - t1) / 1e6
            repeat(warmup) { det.invoke() }
            // the native Invoke() time, as the host bench and benchmark_model time it; the wall
            // time around run() (buffer copies included) only where the runtime does not report it
            val samples = DoubleArray(runs) {
                val s = SystemClock.elapsedRealtimeNanos()
                det.invoke()
                det.lastInvokeMs() ?: ((SystemClock.elapsedRealtimeNanos() - s) / 1e6)
            }
            // the statistics keys sit at the top level, exactly as in edgepipe's BenchResult schema
            val stats = LatencyStats(samples).toJson().trim().removePrefix("{").removeSuffix("}")
            return String.format(Locale.ROOT,
                "{\"model\": \"%s\", \"model_sha256\": \"%s\", \"runtime\": \"litert-android\", " +
                    "\"runtime_version\": \"%s\", \"device\": \"%s %s\", \"os\": \"Android %s (API %d)\", " +
                    "\"cpu\": \"%s\", \"threads\": %d, \"batch\": 1, \"options\": {\"delegate\": \"%s\"}, " +
                    "\"warmup\": %d, \"init_ms\": %.4f, \"first_ms\": %.4f, %s}",
                File(modelPath).name, sha256(File(modelPath)), TensorFlowLite.runtimeVersion(), Build.MANUFACTURER,
                Build.MODEL, Build.VERSION.RELEASE, Build.VERSION.SDK_INT, Build.SUPPORTED_ABIS.joinToString("/"),
                threads, delegate, warmup, initMs, firstMs, stats)
        }
    }

    private fun sha256(f: File): String =
        MessageDigest.getInstance("SHA-256").digest(f.readBytes()).joinToString("") { "%02x".format(it) }

    private fun fail(msg: String) {
        Log.e(TAG, "EDGEPIPE_BENCH_FAILED $msg")
        finish()
    }

    companion object {
        const val TAG = "EdgepipeBench"
    }
}
