//! Minutiae templates: the in-memory form every extractor produces and the matcher reads.

use serde::{Deserialize, Serialize};

/// Resolution every matcher works at: coordinates are scaled to this before matching.
pub const MATCH_PPI: f32 = 500.0;

/// Minutia type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MinutiaKind {
    /// A ridge that stops.
    Ending,
    /// A ridge that splits in two.
    Bifurcation,
    /// Unknown or other (ISO/IEC 19794-2 type 0).
    Other,
}

/// One minutia in image pixel coordinates (origin top-left, y down).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Minutia {
    /// Column, pixels of the original image.
    pub x: f32,
    /// Row, pixels of the original image.
    pub y: f32,
    /// Direction in radians, (-π, π], counter-clockwise as seen on screen (mathematical
    /// convention, y up), as LEADER's channel 1 gives it and as ISO/IEC 19794-2 stores it.
    /// Checked on FVC2002 DB2_B: reading it as clockwise (y down) breaks rotation
    /// invariance and the MCC EER goes from 0 % to 16 %.
    pub angle: f32,
    /// Ending, bifurcation or other.
    pub kind: MinutiaKind,
    /// Detector confidence in 0..1.
    pub quality: f32,
}

/// A set of minutiae from one impression, with the geometry needed to compare it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Width of the image the minutiae come from, pixels.
    pub width: u32,
    /// Height of the image, pixels.
    pub height: u32,
    /// Resolution of the coordinates, pixels per inch.
    pub ppi: f32,
    /// Print quality 0..100 (see [`crate::finger::quality`]); 0 when unknown.
    pub quality: u8,
    /// The minutiae.
    pub minutiae: Vec<Minutia>,
}

impl Template {
    /// Minutiae as `(x, y, direction)` in one consistent frame for geometry: positions
    /// scaled to [`MATCH_PPI`], y down, and the direction converted to that frame
    /// (`-angle`, clockwise on screen), so rotating the print rotates both alike.
    pub fn normalized(&self) -> Vec<(f32, f32, f32)> {
        let s = if self.ppi > 0.0 { MATCH_PPI / self.ppi } else { 1.0 };
        self.minutiae.iter().map(|m| (m.x * s, m.y * s, -m.angle)).collect()
    }
}
