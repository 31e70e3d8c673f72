//! Face pipeline: detect (YuNet), align (5-point similarity to 112×112), embed (ArcFace-style ONNX).
