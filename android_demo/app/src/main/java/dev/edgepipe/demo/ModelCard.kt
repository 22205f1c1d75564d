package dev.edgepipe.demo

import dev.edgepipe.core.QuadFinder
import dev.edgepipe.core.TensorType
import org.json.JSONArray
import org.json.JSONObject

/** An input or output tensor's element type and quantization, as the card's artifact records it. */
data class TensorSpec(val type: TensorType, val scale: Float, val zeroPoint: Int)

/**
 * The parts of edgepipe's model_card.json the app needs, so any exported bundle can be
 * dropped into assets/ without code changes: which .tflite to load, its input size, the
 * per-channel normalisation `x = pixel * scale[c] + bias[c]`, the input tensor's type and
 * quantization (float32, int8, uint8 or int16; null when the card does not record it, and the
 * model's own tensor then decides), and the quad finder's parameters.
 */
data class ModelCard(
    val modelFile: String,
    val variant: String,
    val inputWidth: Int,
    val inputHeight: Int,
    val scale: FloatArray,
    val bias: FloatArray,
    val input: TensorSpec?,
    val outputName: String,
    val quadParams: QuadFinder.Params,
) {
    companion object {
        /** Smallest and fastest on a phone's CPU first. */
        private val PREFERENCE = listOf("int8", "int16x8", "float16", "float32", "dynamic")

        /** Throws IllegalArgumentException / JSONException with a message a developer can act on. */
        fun parse(json: String): ModelCard {
            val card = JSONObject(json)
            val input = card.getJSONArray("inputs").getJSONObject(0)
            val shape = input.getJSONArray("shape")
            require(shape.length() == 4 && shape.getInt(3) == 3) {
                "model_card.json: the app feeds RGB images (input shape [1, H, W, 3]), this model takes $shape"
            }
            val norm = input.getJSONObject("normalization")
            val artifacts = card.getJSONArray("artifacts")
            val tflite = (0 until artifacts.length()).map { artifacts.getJSONObject(it) }
                .filter { it.getString("format") == "tflite" && it.getString("status") == "ok" }
                .sortedBy { PREFERENCE.indexOf(it.getString("variant")).let { i -> if (i < 0) PREFERENCE.size else i } }
            require(tflite.isNotEmpty()) { "model_card.json lists no usable .tflite artifact" }
            val chosen = tflite.first()
            return ModelCard(
                modelFile = chosen.getString("file"),
                variant = chosen.getString("variant"),
                inputWidth = shape.getInt(2),
                inputHeight = shape.getInt(1),
                scale = perChannel(norm.get("scale")),
                bias = perChannel(norm.get("bias")),
                input = chosen.optJSONObject("quantization")?.getJSONObject("input")?.let(::tensorSpec),
                outputName = card.getJSONArray("outputs").getJSONObject(0).getString("name"),
                quadParams = quadParams(card.optJSONObject("postprocessing")?.optJSONObject("quad_finder")),
            )
        }

        /** A number for every channel, or one per channel (mean/std normalisation). */
        private fun perChannel(value: Any): FloatArray = when (value) {
            is JSONArray -> {
                require(value.length() == 3) { "model_card.json: expected 3 per-channel values, got $value" }
                FloatArray(3) { value.getDouble(it).toFloat() }
            }
            is Number -> FloatArray(3) { value.toFloat() }
            else -> throw IllegalArgumentException("model_card.json: normalisation value $value is not a number")
        }

        private fun tensorSpec(q: JSONObject) = TensorSpec(
            TensorType.of(q.getString("dtype")), q.getDouble("scale").toFloat(), q.getInt("zero_point"))

        private fun quadParams(q: JSONObject?) = QuadFinder.Params().apply {
            if (q == null) return@apply
            threshold = q.optDouble("threshold", threshold.toDouble()).toFloat()
            maxLines = q.optInt("max_lines", maxLines)
            nmsRho = q.optDouble("nms_rho", nmsRho)
            nmsThetaDeg = q.optDouble("nms_theta_deg", nmsThetaDeg)
            minVotesFrac = q.optDouble("min_votes_frac", minVotesFrac)
            minAreaFrac = q.optDouble("min_area_frac", minAreaFrac)
            minSidePx = q.optDouble("min_side_px", minSidePx)
            minPairAngleDeg = q.optDouble("min_pair_angle_deg", minPairAngleDeg)
            maxParallelDeg = q.optDouble("max_parallel_deg", maxParallelDeg)
            supportTol = q.optInt("support_tol", supportTol)
            minSupport = q.optDouble("min_support", minSupport)
            missPenalty = q.optDouble("miss_penalty", missPenalty)
            roiMargin = q.optInt("roi_margin", roiMargin)
            regions = q.optBoolean("regions", regions)
            openGapPx = q.optInt("open_gap_px", openGapPx)
            pageWeight = q.optDouble("page_weight", pageWeight)
            pageOffset = q.optDouble("page_offset", pageOffset)
            paperWeight = q.optDouble("paper_weight", paperWeight)
            paperOffset = q.optDouble("paper_offset", paperOffset)
            paperSigma = q.optDouble("paper_sigma", paperSigma)
            maxEdgeFrac = q.optDouble("max_edge_frac", maxEdgeFrac)
            polishIterations = q.optInt("polish_iterations", polishIterations)
            polishBand = q.optDouble("polish_band", polishBand)
            polishTrim = q.optDouble("polish_trim", polishTrim)
            polishMaxMove = q.optDouble("polish_max_move", polishMaxMove)
            bandMaxPx = q.optInt("band_max_px", bandMaxPx)
            bandStep = q.optDouble("band_step", bandStep)
            bandSpread = q.optDouble("band_spread", bandSpread)
            bandMatch = q.optDouble("band_match", bandMatch)
        }
    }
}
