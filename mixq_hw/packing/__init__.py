"""DSP48E2 packing: the planner that lays several low-bit products into one DSP, and the cores that implement its plans."""
