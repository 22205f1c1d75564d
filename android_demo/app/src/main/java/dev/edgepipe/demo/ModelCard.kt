package dev.edgepipe.demo

import org.json.JSONObject

/**
 * The parts of edgepipe's model_card.json the app needs, so any exported bundle can be
 * dropped into assets/ without code changes.
 */
data class ModelCard(
    val modelFile: String,
    val inputWidth: Int,
    val inputHeight: Int,
    val scale: Float,
    val bias: Float,
    val outputName: String,
) {
    companion object {
        /** Prefer the int8 TFLite artifact (smallest, fastest on ARM), else float32. */
        fun parse(json: String): ModelCard {
            val card = JSONObject(json)
            val input = card.getJSONArray("inputs").getJSONObject(0)
            val shape = input.getJSONArray("shape")
            val norm = input.getJSONObject("normalization")
            val artifacts = card.getJSONArray("artifacts")
            val tflite = (0 until artifacts.length()).map { artifacts.getJSONObject(it) }
                .filter { it.getString("format") == "tflite" && it.getString("status") == "ok" }
                .sortedBy { if (it.getString("variant") == "int8") 0 else 1 }
            require(tflite.isNotEmpty()) { "model_card.json lists no usable .tflite artifact" }
            return ModelCard(
                modelFile = tflite.first().getString("file"),
                inputWidth = shape.getInt(2),
                inputHeight = shape.getInt(1),
                scale = norm.getDouble("scale").toFloat(),
                bias = norm.getDouble("bias").toFloat(),
                outputName = card.getJSONArray("outputs").getJSONObject(0).getString("name"),
            )
        }
    }
}
