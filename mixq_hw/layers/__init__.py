"""Streaming layers: one Amaranth Component per job, talking through ``amaranth.lib.stream``.

Stream convention (every layer): a (C, H, W) tensor of codes travels in raster
order (row by row, left to right); each pixel is ``C / lanes`` consecutive
beats, beat ``b`` carrying channels ``b*lanes .. b*lanes + lanes - 1`` as a
``data.ArrayLayout(unsigned(bits), lanes)`` payload.  Frames follow each other
with no marker; every layer knows its shapes and counts.
"""
