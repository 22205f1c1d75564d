package dev.edgepipe.demo

import android.content.Context
import dev.edgepipe.core.Preprocess
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.GpuDelegate
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/** Runtime options the UI toggles and benchmark mode takes from intent extras. */
data class RunOptions(val threads: Int = 4, val xnnpack: Boolean = true, val gpu: Boolean = false)

/**
 * Runs the HED TFLite model on a packed-ARGB frame and returns the edge-probability map.
 * Preprocessing and int8 (de)quantization follow the model card and the tensor's own
 * quantization parameters, exactly as edgepipe's Python TFLite runner does.
 */
class EdgeDetector(model: MappedByteBuffer, private val card: ModelCard, options: RunOptions) : AutoCloseable {
    private val gpuDelegate = if (options.gpu) GpuDelegate() else null
    private val interpreter = Interpreter(model, Interpreter.Options().apply {
        setNumThreads(options.threads)
        setUseXNNPACK(options.xnnpack)
        gpuDelegate?.let { addDelegate(it) }
    })
    private val input = interpreter.getInputTensor(0)
    private val output = interpreter.getOutputTensor(0)
    private val inBuf = ByteBuffer.allocateDirect(input.numBytes()).order(ByteOrder.nativeOrder())
    private val outBuf = ByteBuffer.allocateDirect(output.numBytes()).order(ByteOrder.nativeOrder())

    var lastPreprocessMs = 0.0; private set
    var lastInferenceMs = 0.0; private set

    /** Edge probabilities, row-major card.inputHeight x card.inputWidth. */
    fun detect(argb: IntArray, width: Int, height: Int): FloatArray {
        val t0 = System.nanoTime()
        val x = Preprocess.toInput(argb, width, height, card.inputWidth, card.inputHeight, card.scale, card.bias)
        fillInput(x)
        val t1 = System.nanoTime()
        invoke()
        lastPreprocessMs = (t1 - t0) / 1e6
        lastInferenceMs = (System.nanoTime() - t1) / 1e6
        return readOutput()
    }

    /** One timed inference on whatever is in the input buffer (benchmark mode). */
    fun invoke() {
        inBuf.rewind()
        outBuf.rewind()
        interpreter.run(inBuf, outBuf)
    }

    /** The native Invoke() time of the last run (what benchmark_model and edgepipe's host bench time), ms. */
    fun lastInvokeMs(): Double? = interpreter.lastNativeInferenceDurationNanoseconds?.let { it / 1e6 }

    fun fillInput(x: FloatArray) {
        inBuf.rewind()
        if (input.dataType() == DataType.INT8) {
            val q = input.quantizationParams()
            inBuf.put(Preprocess.quantize(x, q.scale, q.zeroPoint))
        } else {
            x.forEach { inBuf.putFloat(it) }
        }
    }

    private fun readOutput(): FloatArray {
        outBuf.rewind()
        val n = output.numElements()
        return if (output.dataType() == DataType.INT8) {
            val q = output.quantizationParams()
            FloatArray(n) { (outBuf.get() - q.zeroPoint) * q.scale }
        } else {
            FloatArray(n) { outBuf.getFloat() }
        }
    }

    override fun close() {
        interpreter.close()
        gpuDelegate?.close()
    }

    companion object {
        fun loadAsset(context: Context, name: String): MappedByteBuffer =
            context.assets.openFd(name).use { fd ->
                FileInputStream(fd.fileDescriptor).channel.map(
                    FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
            }

        fun loadFile(path: String): MappedByteBuffer =
            FileInputStream(path).use { it.channel.map(FileChannel.MapMode.READ_ONLY, 0, it.channel.size()) }
    }
}
