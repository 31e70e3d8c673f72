//! The identity both galleries (face and finger) answer with.

use serde::{Deserialize, Serialize};

/// A subject: the catalog's row id of an enrolled person. Serialised as the bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubjectId(pub i64);

impl std::fmt::Display for SubjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<i64> for SubjectId {
    fn from(id: i64) -> Self {
        SubjectId(id)
    }
}

impl From<SubjectId> for i64 {
    fn from(id: SubjectId) -> Self {
        id.0
    }
}

impl SubjectId {
    /// Orders ids as their decimal text ("10" before "9"): the order in which subjects tied
    /// on score have always been listed, kept so answers stay the same.
    pub fn cmp_as_text(self, other: SubjectId) -> std::cmp::Ordering {
        let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
        decimal(self.0, &mut a).cmp(decimal(other.0, &mut b))
    }
}

/// The decimal text of `v` in `buf` (20 bytes hold every i64).
fn decimal(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    use std::io::Write;
    let mut w = std::io::Cursor::new(&mut buf[..]);
    write!(w, "{v}").expect("20 bytes hold any i64");
    let n = w.position() as usize;
    &buf[..n]
}

#[cfg(test)]
mod tests {
    use super::SubjectId;

    #[test]
    fn shown_and_serialised_as_the_bare_number() {
        let s = SubjectId(-42);
        assert_eq!(s.to_string(), "-42");
        assert_eq!(serde_json::to_string(&s).unwrap(), "-42");
        assert_eq!(serde_json::from_str::<SubjectId>("7").unwrap(), SubjectId(7));
        assert_eq!(i64::from(SubjectId::from(9)), 9);
    }

    #[test]
    fn text_order_is_the_order_of_the_decimal_strings() {
        let ids = [0i64, 1, 2, 9, 10, 11, 19, 100, -1, -10, -2, i64::MAX, i64::MIN, 1234567890123];
        for &a in &ids {
            for &b in &ids {
                let want = a.to_string().cmp(&b.to_string());
                assert_eq!(SubjectId(a).cmp_as_text(SubjectId(b)), want, "{a} vs {b}");
            }
        }
    }
}
