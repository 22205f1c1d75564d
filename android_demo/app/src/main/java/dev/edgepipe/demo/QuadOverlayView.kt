package dev.edgepipe.demo

import android.content.Context
import android.graphics.Canvas
import android.graphics.Color
import android.graphics.Paint
import android.graphics.Path
import android.util.AttributeSet
import android.view.View
import dev.edgepipe.core.ViewTransform

/**
 * Draws the detected quad over the preview. Corners come in photo pixels of the upright
 * analysis frame; they reach the screen through the same fill-and-centre-crop that the
 * PreviewView (FILL_CENTER) applies to the camera stream. Main thread only.
 */
class QuadOverlayView(context: Context, attrs: AttributeSet?) : View(context, attrs) {
    private val paint = Paint(Paint.ANTI_ALIAS_FLAG).apply {
        color = Color.argb(220, 0, 200, 255)
        style = Paint.Style.STROKE
        strokeWidth = 6f
    }
    private var corners: DoubleArray? = null
    private var srcW = 1
    private var srcH = 1

    fun show(corners: DoubleArray?, sourceWidth: Int, sourceHeight: Int) {
        this.corners = corners
        srcW = sourceWidth
        srcH = sourceHeight
        invalidate()
    }

    override fun onDraw(canvas: Canvas) {
        super.onDraw(canvas)
        val c = ViewTransform.fillCenter(srcW, srcH, width, height).map(corners ?: return)
        val path = Path()
        for (k in 0 until 4) {
            val x = c[2 * k].toFloat()
            val y = c[2 * k + 1].toFloat()
            if (k == 0) path.moveTo(x, y) else path.lineTo(x, y)
        }
        path.close()
        canvas.drawPath(path, paint)
    }
}
