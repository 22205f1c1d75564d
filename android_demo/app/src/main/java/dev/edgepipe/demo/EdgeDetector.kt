package dev.edgepipe.demo

import android.content.Context
import dev.edgepipe.core.Letterbox
import dev.edgepipe.core.Preprocess
import dev.edgepipe.core.TensorType
import dev.edgepipe.core.Tensors
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.Tensor
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel

/** Runtime options the UI toggles and benchmark mode takes from intent extras. */
data class RunOptions(val threads: Int = 4, val xnnpack: Boolean = true, val gpu: Boolean = false)

/**
 * The edge map at the model's input size, the page-region map when the model has one (an
 * edgepipe HED trained with `region: 1` names its outputs `edges` and `page`), and where the
 * photo lies in them, and the letterboxed, exposed input image they were computed from (the quad
 * finder's step 9 reads its pixels).
 */
class Detection(val edges: FloatArray, val page: FloatArray?, val box: Letterbox, val input: IntArray)

/**
 * A LiteRT interpreter for one model: the live screen's HED detector (letterboxed, normalised,
 * quantized input from the model card; dequantized edge map out) and benchmark mode's raw runs.
 * Input and output tensors may be float32, int8, uint8 or int16 (int16x8 models).
 *
 * GPU: the delegate needs `litert-gpu` and `litert-gpu-api`, a phone whose GPU LiteRT supports,
 * and a model whose ops it supports. When any of that is missing, [open] falls back to the CPU
 * and says why in [notice]; with `strictGpu` (benchmark mode) it throws instead, so a number
 * labelled "gpu" was measured on the GPU.
 */
class EdgeDetector private constructor(
    private val interpreter: Interpreter,
    private val gpuDelegate: GpuDelegate?,
    val notice: String?,
) : AutoCloseable {
    private val input: Tensor = interpreter.getInputTensor(0)
    private val outputs: List<Tensor> = (0 until interpreter.outputTensorCount).map { interpreter.getOutputTensor(it) }
    val inputType: TensorType = typeOf(input)
    // by name: the converter does not promise to keep the Keras model's output order
    private val edgesAt = outputs.indexOfFirst { it.name() == "edges" }.let { if (it < 0) 0 else it }
    private val pageAt = outputs.indexOfFirst { it.name() == "page" }
    private val inBuf = ByteBuffer.allocateDirect(input.numBytes()).order(ByteOrder.nativeOrder())
    private val outBufs = outputs.map { ByteBuffer.allocateDirect(it.numBytes()).order(ByteOrder.nativeOrder()) }
    val usesGpu get() = gpuDelegate != null

    var lastPreprocessMs = 0.0; private set
    var lastInferenceMs = 0.0; private set

    /**
     * The model card must describe this model: same input size, and where the card records the
     * input's type and quantization, the same ones. Otherwise the numbers would be garbage.
     */
    fun checkAgainst(card: ModelCard) {
        val shape = input.shape()
        require(shape.size == 4 && shape[1] == card.inputHeight && shape[2] == card.inputWidth && shape[3] == 3) {
            "model_card.json says a ${card.inputWidth}x${card.inputHeight} RGB input, ${card.modelFile} takes " +
                "${shape.contentToString()}: copy the card that came with this model"
        }
        val q = input.quantizationParams()
        card.input?.let {
            require(it.type == inputType && (!inputType.quantized() || (it.scale == q.scale && it.zeroPoint == q.zeroPoint))) {
                "model_card.json says a ${it.type.numpyName()} input (scale ${it.scale}, zero point ${it.zeroPoint}), " +
                    "${card.modelFile} takes ${inputType.numpyName()} (scale ${q.scale}, zero point ${q.zeroPoint})"
            }
        }
    }

    /** Letterbox the upright frame into the input, run, and return the dequantized maps. */
    fun detect(argb: IntArray, width: Int, height: Int, card: ModelCard): Detection {
        val t0 = System.nanoTime()
        val boxed = Preprocess.expose(  // a dark frame brightened, as `edgepipe scan` does
            Preprocess.letterbox(argb, width, height, card.inputWidth, card.inputHeight), card.inputWidth)
        val q = input.quantizationParams()
        inBuf.clear()
        Tensors.write(Preprocess.normalize(boxed.argb, card.scale, card.bias), inputType, q.scale, q.zeroPoint, inBuf)
        val t1 = System.nanoTime()
        invoke()
        lastPreprocessMs = (t1 - t0) / 1e6
        lastInferenceMs = (System.nanoTime() - t1) / 1e6
        return Detection(read(edgesAt), if (pageAt < 0) null else read(pageAt), boxed.box, boxed.argb)
    }

    private fun read(k: Int): FloatArray {
        val q = outputs[k].quantizationParams()
        outBufs[k].rewind()
        return Tensors.read(outBufs[k], typeOf(outputs[k]), q.scale, q.zeroPoint, outputs[k].numElements())
    }

    /** One inference on whatever is in the input buffer (benchmark mode times this). */
    fun invoke() {
        inBuf.rewind()
        outBufs.forEach { it.rewind() }
        interpreter.runForMultipleInputsOutputs(arrayOf<Any>(inBuf), outBufs.indices.associateWith { outBufs[it] })
    }

    /** The native Invoke() time of the last run (what benchmark_model and edgepipe's host bench time), ms. */
    fun lastInvokeMs(): Double? = interpreter.lastNativeInferenceDurationNanoseconds?.let { it / 1e6 }

    /**
     * A golden input as the host wrote it (the input tensor's exact bytes, little-endian, as
     * every Android ABI is) -> every output tensor's bytes, in output order.
     */
    fun runRaw(bytes: ByteArray): List<ByteArray> {
        require(bytes.size == inBuf.capacity()) {
            "golden input has ${bytes.size} bytes, the model's input takes ${inBuf.capacity()}"
        }
        inBuf.clear()
        inBuf.put(bytes)
        invoke()
        return outBufs.map { buf -> ByteArray(buf.capacity()).also { buf.rewind(); buf.get(it) } }
    }

    override fun close() {
        interpreter.close()
        gpuDelegate?.close()
    }

    companion object {
        private fun typeOf(t: Tensor): TensorType = when (t.dataType()) {
            DataType.FLOAT32 -> TensorType.FLOAT32
            DataType.INT8 -> TensorType.INT8
            DataType.UINT8 -> TensorType.UINT8
            DataType.INT16 -> TensorType.INT16
            else -> throw IllegalArgumentException("tensor '${t.name()}' is ${t.dataType()}: the app handles " +
                "float32, int8, uint8 and int16")
        }

        fun open(model: MappedByteBuffer, options: RunOptions, strictGpu: Boolean = false): EdgeDetector {
            var notice: String? = null
            if (options.gpu) {
                try {
                    val delegate = gpuDelegateOrNull()
                    if (delegate != null) {
                        val interpreter = try {
                            Interpreter(model, Interpreter.Options().addDelegate(delegate))
                        } catch (e: Exception) {  // an op the GPU cannot run, a driver that refuses the model
                            delegate.close()
                            notice = "the GPU delegate cannot run this model (${e.message?.lineSequence()?.first()})"
                            null
                        }
                        if (interpreter != null) return wrap(interpreter, delegate, null)
                    } else {
                        notice = "LiteRT does not support this phone's GPU"
                    }
                } catch (e: LinkageError) {  // NoClassDefFoundError / UnsatisfiedLinkError: artifact or .so missing
                    notice = "the GPU delegate is not in this build ($e)"
                }
                if (strictGpu) throw IllegalStateException("GPU requested but unavailable: $notice")
                notice = "$notice; running on the CPU"
            }
            val cpu = Interpreter.Options().setNumThreads(options.threads).setUseXNNPACK(options.xnnpack)
            return wrap(Interpreter(model, cpu), null, notice)
        }

        /** The interpreter is closed if its tensors are of a type the app cannot feed. */
        private fun wrap(interpreter: Interpreter, delegate: GpuDelegate?, notice: String?): EdgeDetector =
            try {
                EdgeDetector(interpreter, delegate, notice)
            } catch (e: Exception) {
                interpreter.close()
                delegate?.close()
                throw e
            }

        private fun gpuDelegateOrNull(): GpuDelegate? {
            val compat = CompatibilityList()
            try {
                return if (compat.isDelegateSupportedOnThisDevice) GpuDelegate(compat.bestOptionsForThisDevice) else null
            } finally {
                compat.close()
            }
        }

        fun loadAsset(context: Context, name: String): MappedByteBuffer =
            context.assets.openFd(name).use { fd ->
                FileInputStream(fd.fileDescriptor).channel.map(
                    FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
            }

        fun loadFile(path: String): MappedByteBuffer =
            FileInputStream(path).use { it.channel.map(FileChannel.MapMode.READ_ONLY, 0, it.channel.size()) }
    }
}
