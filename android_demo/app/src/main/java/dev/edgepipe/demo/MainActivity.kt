package dev.edgepipe.demo

import android.Manifest
import android.content.pm.PackageManager
import android.graphics.Bitmap
import android.os.Bundle
import android.widget.ArrayAdapter
import android.widget.Button
import android.widget.CheckBox
import android.widget.ImageView
import android.widget.Spinner
import android.widget.TextView
import android.widget.Toast
import android.view.View
import androidx.appcompat.app.AppCompatActivity
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import androidx.camera.core.Preview
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.camera.view.PreviewView
import androidx.core.app.ActivityCompat
import androidx.core.content.ContextCompat
import dev.edgepipe.core.Perspective
import dev.edgepipe.core.QuadFinder
import java.util.Locale
import java.util.concurrent.Executors

/** Live document detection: CameraX preview, HED on each frame, quad overlay, capture. */
class MainActivity : AppCompatActivity() {
    private lateinit var card: ModelCard
    private var detector: EdgeDetector? = null
    private val finder = QuadFinder()
    private val analysisExecutor = Executors.newSingleThreadExecutor()
    @Volatile private var lastFrame: Bitmap? = null
    @Volatile private var lastCorners: DoubleArray? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContentView(R.layout.activity_main)
        card = ModelCard.parse(assets.open("model_card.json").bufferedReader().readText())
        setUpToggles()
        findViewById<Button>(R.id.capture).setOnClickListener { capture() }
        findViewById<ImageView>(R.id.page).setOnClickListener { it.visibility = View.GONE }
        if (ContextCompat.checkSelfPermission(this, Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED) {
            startCamera()
        } else {
            ActivityCompat.requestPermissions(this, arrayOf(Manifest.permission.CAMERA), 1)
        }
    }

    override fun onRequestPermissionsResult(code: Int, perms: Array<out String>, results: IntArray) {
        super.onRequestPermissionsResult(code, perms, results)
        if (results.firstOrNull() == PackageManager.PERMISSION_GRANTED) startCamera()
        else Toast.makeText(this, R.string.camera_denied, Toast.LENGTH_LONG).show()
    }

    private fun setUpToggles() {
        val threads = findViewById<Spinner>(R.id.threads)
        threads.adapter = ArrayAdapter(this, android.R.layout.simple_spinner_item, listOf(1, 2, 4, 8))
        threads.setSelection(2)
        val rebuild = {
            val options = RunOptions(
                threads = threads.selectedItem as Int,
                xnnpack = findViewById<CheckBox>(R.id.xnnpack).isChecked,
                gpu = findViewById<CheckBox>(R.id.gpu).isChecked,
            )
            analysisExecutor.execute {
                detector?.close()
                detector = EdgeDetector(EdgeDetector.loadAsset(this, card.modelFile), card, options)
            }
        }
        threads.onItemSelectedListener = SimpleItemSelected { rebuild() }
        findViewById<CheckBox>(R.id.xnnpack).setOnCheckedChangeListener { _, _ -> rebuild() }
        findViewById<CheckBox>(R.id.gpu).setOnCheckedChangeListener { _, _ -> rebuild() }
        rebuild()
    }

    private fun startCamera() {
        val providerFuture = ProcessCameraProvider.getInstance(this)
        providerFuture.addListener({
            val provider = providerFuture.get()
            val preview = Preview.Builder().build().also {
                it.setSurfaceProvider(findViewById<PreviewView>(R.id.preview).surfaceProvider)
            }
            val analysis = ImageAnalysis.Builder()
                .setBackpressureStrategy(ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST)
                .setOutputImageFormat(ImageAnalysis.OUTPUT_IMAGE_FORMAT_RGBA_8888)
                .build()
            analysis.setAnalyzer(analysisExecutor) { analyze(it) }
            provider.unbindAll()
            provider.bindToLifecycle(this, CameraSelector.DEFAULT_BACK_CAMERA, preview, analysis)
        }, ContextCompat.getMainExecutor(this))
    }

    private fun analyze(image: ImageProxy) {
        image.use {
            val det = detector ?: return
            val bitmap = it.toBitmap()
            val pixels = IntArray(bitmap.width * bitmap.height)
            bitmap.getPixels(pixels, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
            val edges = det.detect(pixels, bitmap.width, bitmap.height)
            val t0 = System.nanoTime()
            val result = finder.find(edges, card.inputWidth, card.inputHeight)
            val postMs = (System.nanoTime() - t0) / 1e6
            lastFrame = bitmap
            lastCorners = result.corners
            findViewById<QuadOverlayView>(R.id.overlay).show(result.corners, card.inputWidth, card.inputHeight)
            val text = String.format(Locale.ROOT, "pre %.1f ms\ninfer %.1f ms\npost %.1f ms\n%s",
                det.lastPreprocessMs, det.lastInferenceMs, postMs, if (result.found()) "document" else result.reason)
            runOnUiThread { findViewById<TextView>(R.id.latency).text = text }
        }
    }

    /** The perspective-rectified page from the last frame with a detected quad. */
    private fun capture() {
        val frame = lastFrame ?: return
        val quad = lastCorners ?: return Toast.makeText(this, "no document found", Toast.LENGTH_SHORT).show()
        val sx = frame.width.toDouble() / card.inputWidth
        val sy = frame.height.toDouble() / card.inputHeight
        val corners = DoubleArray(8) { i -> quad[i] * if (i % 2 == 0) sx else sy }
        val (w, h) = Perspective.pageSize(corners).let { it[0] to it[1] }
        val pixels = IntArray(frame.width * frame.height)
        frame.getPixels(pixels, 0, frame.width, 0, 0, frame.width, frame.height)
        val page = Perspective.rectify(pixels, frame.width, frame.height, corners, w, h)
        findViewById<ImageView>(R.id.page).apply {
            setImageBitmap(Bitmap.createBitmap(page, w, h, Bitmap.Config.ARGB_8888))
            visibility = View.VISIBLE
        }
    }

    override fun onDestroy() {
        super.onDestroy()
        analysisExecutor.execute { detector?.close() }
        analysisExecutor.shutdown()
    }
}
