//! Fingerprint pipeline: minutiae extraction (LEADER ONNX), matcher, 1:N.
