package dev.edgepipe.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.os.Bundle
import android.util.Log
import android.view.Surface
import android.view.View
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.CheckBox
import android.widget.ImageView
import android.widget.Spinner
import android.widget.TextView
import android.widget.Toast
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.core.resolutionselector.AspectRatioStrategy
import androidx.camera.core.resolutionselector.ResolutionSelector
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.app.ActivityCompat
import androidx.core.content.ContextCompat
import dev.edgepipe.core.Perspective
import dev.edgepipe.core.QuadFinder
import dev.edgepipe.core.Rotation
import java.util.Locale
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicReference

/** One analysed frame, upright, with the corners found in it (photo pixels), or none. */
class Snapshot(val argb: IntArray, val width: Int, val height: Int, val corners: DoubleArray?)

/**
 * Live document detection: CameraX preview, HED on each upright frame (letterboxed as
 * `edgepipe scan` does), quad overlay mapped onto the preview, capture of the rectified page.
 *
 * Threads: the model, the quad finder and page rectification run on one analysis thread;
 * views are touched only on the main thread. A failure on the analysis thread is shown on
 * screen and the next frame is tried again: it never takes the app down.
 */
class MainActivity : AppCompatActivity() {
    private var card: ModelCard? = null
    private var finder = QuadFinder()
    private val analysisExecutor = Executors.newSingleThreadExecutor()
    private var detector: EdgeDetector? = null  // created, used and closed on analysisExecutor only
    private val latest = AtomicReference<Snapshot?>(null)  // frame and corners replaced together

    private lateinit var previewView: PreviewView
    private lateinit var overlay: QuadOverlayView
    private lateinit var latencyView: TextView
    private lateinit var statusView: TextView
    private lateinit var pageView: ImageView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        previewView = findViewById(R.id.preview)
        overlay = findViewById(R.id.overlay)
        latencyView = findViewById(R.id.latency)
        statusView = findViewById(R.id.status)
        pageView = findViewById(R.id.page)
        previewView.scaleType = PreviewView.ScaleType.FILL_CENTER  // what ViewTransform.fillCenter assumes
        val problem = loadBundle()
        if (problem != null) {
            findViewById<View>(R.id.controls).visibility = View.GONE
            findViewById<TextView>(R.id.no_bundle).apply { text = problem; visibility = View.VISIBLE }
            return
        }
        setUpToggles()
        findViewById<Button>(R.id.capture).setOnClickListener { capture() }
        pageView.setOnClickListener { it.visibility = View.GONE }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            ActivityCompat.requestPermissions(this, arrayOf(Manifest.permission.CAMERA), 1)
        }
    }

    /** The card and the model it names, from assets/; a message saying what to copy when they are not there. */
    private fun loadBundle(): String? {
        val files = assets.list("")?.toSet() ?: emptySet()
        if ("model_card.json" !in files) return getString(R.string.no_bundle, "model_card.json is missing")
        val parsed = try {
            ModelCard.parse(assets.open("model_card.json").bufferedReader().use { it.readText() })
        } catch (e: Exception) {
            return getString(R.string.no_bundle, "model_card.json cannot be used: ${e.message}")
        }
        if (parsed.modelFile !in files) {
            return getString(R.string.no_bundle, "model_card.json names ${parsed.modelFile}, which is missing")
        }
        card = parsed
        finder = QuadFinder(parsed.quadParams)
        return null
    }

    override fun onRequestPermissionsResult(code: Int, perms: Array<out String>, results: IntArray) {
        super.onRequestPermissionsResult(code, perms, results)
        if (results.firstOrNull() == PackageManager.PERMISSION_GRANTED) startCamera()
        else showStatus(getString(R.string.camera_denied))
    }

    private fun setUpToggles() {
        val threads = findViewById<Spinner>(R.id.threads)
        val xnnpack = findViewById<CheckBox>(R.id.xnnpack)
        val gpu = findViewById<CheckBox>(R.id.gpu)
        threads.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_item, listOf(1, 2, 4, 8))
        threads.setSelection(2)
        val rebuild = {
            val options = RunOptions(threads = threads.selectedItem as Int, xnnpack = xnnpack.isChecked, gpu = gpu.isChecked)
            analysisExecutor.execute { openDetector(options) }
        }
        threads.onItemSelectedListener = SimpleItemSelected { rebuild() }
        xnnpack.setOnCheckedChangeListener { _, _ -> rebuild() }
        gpu.setOnCheckedChangeListener { _, _ -> rebuild() }
        rebuild()
    }

    /** On the analysis thread: a missing or mismatched model is a message, not a crash. */
    private fun openDetector(options: RunOptions) {
        detector?.close()
        detector = null
        val c = card ?: return
        try {
            val det = EdgeDetector.open(EdgeDetector.loadAsset(this, c.modelFile), options)
            try {
                det.checkAgainst(c)
            } catch (e: Exception) {
                det.close()
                throw e
            }
            detector = det
            showStatus(det.notice?.let { "${c.modelFile}: $it" })
        } catch (t: Throwable) {
            showError("cannot run ${c.modelFile}", t)
        }
    }

    private fun startCamera() {
        val providerFuture = ProcessCameraProvider.getInstance(this)
        providerFuture.addListener({
            try {
                val provider = providerFuture.get()
                // one aspect ratio for both streams: the analysed frame shows what the preview shows
                val selector = ResolutionSelector.Builder()
                    .setAspectRatioStrategy(AspectRatioStrategy.RATIO_4_3_FALLBACK_AUTO_STRATEGY).build()
                val rotation = previewView.display?.rotation ?: Surface.ROTATION_0
                val preview = Preview.Builder().setResolutionSelector(selector).setTargetRotation(rotation).build()
                preview.setSurfaceProvider(previewView.surfaceProvider)
                val analysis = ImageAnalysis.Builder()
                    .setResolutionSelector(selector)
                    .setTargetRotation(rotation)
                    .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                    .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                    .build()
                analysis.setAnalyzer(analysisExecutor) { analyze(it) }
                provider.unbindAll()
                provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
            } catch (e: Exception) {
                showError("cannot start the camera", e)
            }
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(image: ImageProxy) {
        try {
            val det = detector ?: return
            val c = card ?: return
            val bitmap = image.toBitmap()
            val raw = IntArray(bitmap.width * bitmap.height)
            bitmap.getPixels(raw, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
            // the sensor's buffer turned upright: the model, the overlay and the page all see the
            // scene as the user holds the phone
            val rotation = image.imageInfo.rotationDegrees
            val upright = Rotation.rotate(raw, bitmap.width, bitmap.height, rotation)
            val size = Rotation.size(bitmap.width, bitmap.height, rotation)
            val d = det.detect(upright, size[0], size[1], c)
            val t0 = System.nanoTime()
            val result = finder.find(d.edges, c.inputWidth, c.inputHeight, d.box.roi(), d.page, d.input)
            val corners = result.corners?.let { d.box.toPhoto(it) }
            val postMs = (System.nanoTime() - t0) / 1e6
            latest.set(Snapshot(upright, size[0], size[1], corners))
            val text = String.format(Locale.ROOT, "pre %.1f ms\ninfer %.1f ms\npost %.1f ms\n%s",
                det.lastPreprocessMs, det.lastInferenceMs, postMs, if (result.found()) "document" else result.reason)
            runOnUiThread {
                overlay.show(corners, size[0], size[1])
                latencyView.text = text
            }
        } catch (t: Throwable) {
            showError("analysis failed", t)
        } finally {
            image.close()
        }
    }

    /** The perspective-rectified page from the last frame, with that frame's own corners. */
    private fun capture() {
        val snap = latest.get() ?: return toast("no camera frame yet")
        val corners = snap.corners ?: return toast("no document found")
        analysisExecutor.execute {
            try {
                val size = Perspective.pageSize(corners)
                val page = Perspective.rectify(snap.argb, snap.width, snap.height, corners, size[0], size[1])
                val bitmap = Bitmap.createBitmap(page, size[0], size[1], Bitmap.Config.ARGB_8888)
                runOnUiThread {
                    pageView.setImageBitmap(bitmap)
                    pageView.visibility = View.VISIBLE
                }
            } catch (t: Throwable) {
                showError("capture failed", t)
            }
        }
    }

    private fun toast(message: String) = Toast.makeText(this, message, Toast.LENGTH_SHORT).show()

    /** From any thread; null hides the line. */
    private fun showStatus(message: String?) = runOnUiThread {
        statusView.text = message
        statusView.visibility = if (message == null) View.GONE else View.VISIBLE
    }

    private fun showError(what: String, t: Throwable) {
        Log.e(TAG, what, t)
        showStatus("$what: ${t.javaClass.simpleName}: ${t.message?.lineSequence()?.first() ?: ""}")
    }

    override fun onDestroy() {
        super.onDestroy()
        analysisExecutor.execute { detector?.close(); detector = null }
        analysisExecutor.shutdown()
    }

    companion object {
        const val TAG = "EdgepipeScan"
    }
}
