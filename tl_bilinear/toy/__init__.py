"""Toy bilinear layers on boolean gates (the paper's tutorial 0), decomposed by the analysis core."""

from tl_bilinear.toy.gates import GATES, ToyGates, gate_dataset, train_gates

__all__ = ["GATES", "ToyGates", "gate_dataset", "train_gates"]
