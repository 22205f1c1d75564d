package dev.edgepipe.demo

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.os.SystemClock
import android.util.Log
import android.view.WindowManager
import dev.edgepipe.core.LatencyStats
import dev.edgepipe.core.SafeNames
import org.json.JSONArray
import org.tensorflow.lite.TensorFlowLite
import java.io.File
import java.security.MessageDigest
import java.util.Locale

/**
 * Benchmark mode, driven over adb (`edgepipe bench --device android` runs exactly this):
 *
 *   adb shell am start -S -W -n dev.edgepipe.demo/.BenchmarkActivity \
 *     --es model /data/local/tmp/model.tflite --ei threads 4 --es delegate xnnpack \
 *     --ei warmup 10 --ei runs 50 --es out bench.json [--es golden /data/local/tmp/edgepipe_golden]
 *
 * It writes one result in edgepipe's bench schema to the app's external files folder
 * (`adb pull /sdcard/Android/data/dev.edgepipe.demo/files/bench.json`), logs
 * "EDGEPIPE_BENCH_DONE <path>" (or "EDGEPIPE_BENCH_FAILED <reason>") and finishes.
 *
 * `golden`: a folder of input tensors as raw bytes (`*.bin`, written by the host). After timing,
 * each is run once and every output tensor's raw bytes go to `files/golden_out/<input>.out<k>`;
 * the JSON lists them under "golden_outputs" for the host to compare with its own run.
 *
 * The activity is exported, so any app may start it: `out` must be a plain file name, and
 * everything is written inside this app's own files folder.
 */
class BenchmarkActivity : Activity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        keepAwake()
        val e = intent.extras ?: Bundle()
        val modelPath = e.getString("model") ?: return fail("missing --es model PATH")
        val outName = e.getString("out") ?: "bench.json"
        if (!SafeNames.isPlainFileName(outName)) {
            return fail("--es out takes a plain file name (written in the app's files folder), got '$outName'")
        }
        val dir = getExternalFilesDir(null) ?: return fail("the app's external files folder is unavailable")
        val delegate = e.getString("delegate") ?: "xnnpack"
        if (delegate !in listOf("xnnpack", "cpu", "gpu")) return fail("unknown delegate '$delegate'")
        val request = Request(modelPath, e.getInt("threads", 4), delegate, e.getInt("warmup", 10),
            e.getInt("runs", 50), e.getString("golden"))
        Thread({
            try {
                val out = File(dir, outName)
                out.writeText(run(request, dir))
                Log.i(TAG, "EDGEPIPE_BENCH_DONE ${out.absolutePath}")
            } catch (t: Throwable) {
                Log.e(TAG, "EDGEPIPE_BENCH_FAILED ${t.javaClass.simpleName}: ${t.message?.lineSequence()?.first()}")
            }
            runOnUiThread { finish() }
        }, "edgepipe-bench").start()
    }

    private class Request(val model: String, val threads: Int, val delegate: String, val warmup: Int,
                          val runs: Int, val golden: String?)

    /** A sleeping phone throttles its CPU; run with the screen on, above the lock screen. */
    private fun keepAwake() {
        window.addFlags(WindowManager.LayoutParams.FLAG_KEEP_SCREEN_ON)
        if (Build.VERSION.SDK_INT >= 27) {
            setShowWhenLocked(true)
            setTurnScreenOn(true)
        } else {
            @Suppress("DEPRECATION")
            window.addFlags(WindowManager.LayoutParams.FLAG_SHOW_WHEN_LOCKED or WindowManager.LayoutParams.FLAG_TURN_SCREEN_ON)
        }
    }

    private fun run(r: Request, dir: File): String {
        val options = RunOptions(threads = r.threads, xnnpack = r.delegate == "xnnpack", gpu = r.delegate == "gpu")
        val t0 = SystemClock.elapsedRealtimeNanos()
        // strict: a result labelled "gpu" is measured on the GPU or not at all
        return EdgeDetector.open(EdgeDetector.loadFile(r.model), options, strictGpu = true).use { det ->
            val initMs = (SystemClock.elapsedRealtimeNanos() - t0) / 1e6
            val t1 = SystemClock.elapsedRealtimeNanos()
            det.invoke()
            val firstMs = (SystemClock.elapsedRealtimeNanos() - t1) / 1e6
            repeat(r.warmup) { det.invoke() }
            // the native Invoke() time, as the host bench and benchmark_model time it; the wall
            // time around run() (buffer copies included) only where the runtime does not report it
            val samples = DoubleArray(r.runs) {
                val s = SystemClock.elapsedRealtimeNanos()
                det.invoke()
                det.lastInvokeMs() ?: ((SystemClock.elapsedRealtimeNanos() - s) / 1e6)
            }
            val golden = r.golden?.let { runGolden(det, File(it), File(dir, "golden_out")) }
            // the statistics keys sit at the top level, exactly as in edgepipe's BenchResult schema
            val stats = LatencyStats(samples).toJson().trim().removePrefix("{").removeSuffix("}")
            val model = File(r.model)
            String.format(Locale.ROOT,
                "{\"model\": %s, \"model_sha256\": \"%s\", \"runtime\": \"litert-android\", " +
                    "\"runtime_version\": %s, \"device\": %s, \"os\": \"Android %s (API %d)\", " +
                    "\"cpu\": %s, \"threads\": %d, \"batch\": 1, \"options\": {\"delegate\": \"%s\"}, " +
                    "\"warmup\": %d, \"init_ms\": %.4f, \"first_ms\": %.4f, %s%s}",
                quote(model.name), sha256(model), quote(TensorFlowLite.runtimeVersion()),
                quote("${Build.MANUFACTURER} ${Build.MODEL}"), Build.VERSION.RELEASE, Build.VERSION.SDK_INT,
                quote(Build.SUPPORTED_ABIS.joinToString("/")), r.threads, r.delegate, r.warmup, initMs, firstMs, stats,
                golden?.let { ", \"golden_outputs\": $it" } ?: "")
        }
    }

    /** Each golden input once; returns the JSON list (per input, its output files in output order). */
    private fun runGolden(det: EdgeDetector, inputs: File, out: File): String {
        val files = inputs.listFiles { f -> f.isFile && f.name.endsWith(".bin") }?.sortedBy { it.name }.orEmpty()
        require(files.isNotEmpty()) { "no golden inputs (*.bin) readable in $inputs" }
        out.deleteRecursively()
        check(out.mkdirs()) { "cannot create $out" }
        val listing = JSONArray()
        for (f in files) {
            require(SafeNames.isPlainFileName(f.name)) { "golden input name '${f.name}' is not a plain file name" }
            val names = JSONArray()
            det.runRaw(f.readBytes()).forEachIndexed { k, bytes ->
                val name = "${f.name}.out$k"
                File(out, name).writeBytes(bytes)
                names.put(name)
            }
            listing.put(names)
        }
        return listing.toString()
    }

    private fun quote(s: String): String = org.json.JSONObject.quote(s)

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
