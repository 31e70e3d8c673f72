//! Distance kernels (scalar, AVX2, AVX-512) behind one safe API with runtime CPU detection.
