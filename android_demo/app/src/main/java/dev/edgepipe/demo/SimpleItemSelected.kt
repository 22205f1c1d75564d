package dev.edgepipe.demo

import android.view.View
import android.widget.AdapterView

/** An OnItemSelectedListener from a lambda. */
class SimpleItemSelected(private val onSelected: () -> Unit) : AdapterView.OnItemSelectedListener {
    override fun onItemSelected(parent: AdapterView<*>?, view: View?, position: Int, id: Long) = onSelected()
    override fun onNothingSelected(parent: AdapterView<*>?) = Unit
}
