//! The inverse wavelet transform (NBIS util.c `wsq_reconstruct`, `join_lets`).

use super::tables::Dtt;
use super::tree::WNode;
use super::{W_TREELEN, bad};
use crate::error::{EngineError, Result};

/// Inverse wavelet transform in place, from the smallest split to the whole image (NBIS
/// `wsq_reconstruct`): each node joins its columns, then its rows.
pub(super) fn reconstruct(img: &mut [f32], width: usize, w: &[WNode; W_TREELEN], dtt: &Dtt) -> Result<()> {
    let mut tmp = vec![0f32; img.len()];
    for n in w.iter().rev() {
        let base = n.y as usize * width + n.x as usize;
        let (lenx, leny) = (n.lenx.max(0) as usize, n.leny.max(0) as usize);
        let filters = Filters { hi: &dtt.hi, lo: &dtt.lo };
        join_lets(&mut tmp, 0, img, base, (lenx, leny), (1, width), &filters, n.inv_cl)?;
        join_lets(img, base, &tmp, 0, (leny, lenx), (width, 1), &filters, n.inv_rw)?;
    }
    Ok(())
}

struct Filters<'a> {
    hi: &'a [f32],
    lo: &'a [f32],
}

fn out_of_image() -> EngineError {
    bad("a subband is too small for the wavelet filters (reconstruction would leave the image)".into())
}

fn rd(buf: &[f32], at: isize) -> Result<f32> {
    usize::try_from(at).ok().and_then(|i| buf.get(i).copied()).ok_or_else(out_of_image)
}

fn wr(buf: &mut [f32], at: isize) -> Result<&mut f32> {
    usize::try_from(at).ok().and_then(|i| buf.get_mut(i)).ok_or_else(out_of_image)
}

/// Synthesis of `len1` lines of `len2` samples each (low-pass half then high-pass half, or
/// the reverse when `inv`), with symmetric extension at both ends for odd- or even-length
/// filters: a line-by-line port of NBIS `join_lets`, positions kept as buffer indices so
/// every access is checked.
#[allow(clippy::too_many_arguments)]
fn join_lets(
    new: &mut [f32],
    new_base: usize,
    old: &[f32],
    old_base: usize,
    (len1, len2): (usize, usize),
    (pitch, stride): (usize, usize),
    f: &Filters,
    inv: bool,
) -> Result<()> {
    let lo = f.lo;
    let (lsz, hsz) = (lo.len(), f.hi.len());
    let da_ev = len2 % 2 == 1;
    let fi_ev = lsz % 2 == 1;
    let pstr = stride as isize;
    let nstr = -pstr;
    let (llen, hlen) = if da_ev { (len2.div_ceil(2), len2.div_ceil(2) - 1) } else { (len2 / 2, len2 / 2) };
    let (llen, hlen) = (llen as isize, hlen as isize);
    let (asym, ssfac, ofhre, mut loc, mut hoc, lotap, hotap);
    let (mut olle, olre, mut ohle, ohre);
    let hi: Vec<f32>;
    let (lsz_i, hsz_i) = (lsz as isize, hsz as isize);
    if fi_ev {
        asym = false;
        ssfac = 1.0f32;
        ofhre = 0i32;
        loc = (lsz_i - 1) / 4;
        hoc = (hsz_i + 1) / 4 - 1;
        lotap = ((lsz_i - 1) / 2) % 2;
        hotap = ((hsz_i + 1) / 2) % 2;
        (olle, olre, ohle, ohre) = if da_ev { (false, false, true, true) } else { (false, true, true, false) };
        hi = f.hi.to_vec();
    } else {
        asym = true;
        ssfac = -1.0;
        ofhre = 2;
        loc = lsz_i / 4 - 1;
        hoc = hsz_i / 4 - 1;
        lotap = (lsz_i / 2) % 2;
        hotap = (hsz_i / 2) % 2;
        (olle, olre, ohle, ohre) = if da_ev { (true, false, true, true) } else { (true, true, true, true) };
        if loc == -1 {
            loc = 0;
            olle = false;
        }
        if hoc == -1 {
            hoc = 0;
            ohle = false;
        }
        hi = f.hi.iter().map(|&h| -h).collect();
    }
    let mut fhre = 0i32;

    // One low-pass output: starts at lspx and walks the taps tap, tap+2, ... reflecting at
    // the line ends.
    struct Walk {
        px: isize,
        str_: isize,
        le: bool,
        re: bool,
    }
    let low = |w: Walk, tap: usize, lp0: isize, lp1: isize| -> Result<f32> {
        let Walk { mut px, str_: mut pxstr, mut le, mut re } = w;
        let mut acc = rd(old, px)? * lo[tap];
        let mut i = tap + 2;
        while i < lsz {
            if px == lp0 {
                if le {
                    pxstr = 0;
                    le = false;
                } else {
                    pxstr = pstr;
                }
            }
            if px == lp1 {
                if re {
                    pxstr = 0;
                    re = false;
                } else {
                    pxstr = nstr;
                }
            }
            px += pxstr;
            acc += rd(old, px)? * lo[i];
            i += 2;
        }
        Ok(acc)
    };
    // One high-pass contribution added to `acc`.
    let high =
        |w: Walk, tap: usize, hp0: isize, hp1: isize, mut sfac: f32, fhre: &mut i32, mut acc: f32| -> Result<f32> {
            let Walk { mut px, str_: mut pxstr, mut le, mut re } = w;
            let mut i = tap;
            while i < hsz {
                if px == hp0 {
                    if le {
                        pxstr = 0;
                        le = false;
                    } else {
                        pxstr = pstr;
                        sfac = 1.0;
                    }
                }
                if px == hp1 {
                    if re {
                        pxstr = 0;
                        re = false;
                        if asym && da_ev {
                            re = true;
                            *fhre -= 1;
                            sfac = *fhre as f32;
                            if sfac == 0.0 {
                                re = false;
                            }
                        }
                    } else {
                        pxstr = nstr;
                        if asym {
                            sfac = -1.0;
                        }
                    }
                }
                acc += rd(old, px)? * hi[i] * sfac;
                px += pxstr;
                i += 2;
            }
            Ok(acc)
        };

    for cl_rw in 0..len1 {
        let line = (new_base + cl_rw * pitch) as isize;
        let (mut limg, mut himg) = (line, line);
        *wr(new, himg)? = 0.0;
        *wr(new, himg + pstr)? = 0.0;
        let src = (old_base + cl_rw * pitch) as isize;
        let (lopass, hipass) = if inv { (src + pstr * hlen, src) } else { (src, src + pstr * llen) };

        let lp0 = lopass;
        let lp1 = lp0 + (llen - 1) * pstr;
        let mut lspx = lp0 + loc * pstr;
        let mut lspxstr = nstr;
        let mut lstap = lotap;
        let (mut lle2, lre2) = (olle, olre);

        let hp0 = hipass;
        let hp1 = hp0 + (hlen - 1) * pstr;
        let mut hspx = hp0 + hoc * pstr;
        let mut hspxstr = nstr;
        let mut hstap = hotap;
        let (mut hle2, hre2) = (ohle, ohre);
        let mut osfac = ssfac;

        for _ in 0..hlen {
            for tap in (0..=lstap).rev() {
                let w = Walk { px: lspx, str_: lspxstr, le: lle2, re: lre2 };
                *wr(new, limg)? = low(w, tap as usize, lp0, lp1)?;
                limg += pstr;
            }
            if lspx == lp0 {
                if lle2 {
                    lspxstr = 0;
                    lle2 = false;
                } else {
                    lspxstr = pstr;
                }
            }
            lspx += lspxstr;
            lstap = 1;

            for tap in (0..=hstap).rev() {
                fhre = ofhre;
                let w = Walk { px: hspx, str_: hspxstr, le: hle2, re: hre2 };
                let acc = rd(new, himg)?;
                *wr(new, himg)? = high(w, tap as usize, hp0, hp1, osfac, &mut fhre, acc)?;
                himg += pstr;
            }
            if hspx == hp0 {
                if hle2 {
                    hspxstr = 0;
                    hle2 = false;
                } else {
                    hspxstr = pstr;
                    osfac = 1.0;
                }
            }
            hspx += hspxstr;
            hstap = 1;
        }

        let lstap = match (da_ev, lotap == 1) {
            (true, true) => 1,
            (true, false) => 0,
            (false, true) => 2,
            (false, false) => 1,
        };
        for tap in (lstap..=1).rev() {
            let w = Walk { px: lspx, str_: lspxstr, le: lle2, re: lre2 };
            *wr(new, limg)? = low(w, tap as usize, lp0, lp1)?;
            limg += pstr;
        }

        let hstap = if da_ev {
            if hsz == 2 {
                hspx -= hspxstr;
                fhre = 1;
            }
            if hotap == 1 { 1 } else { 0 }
        } else if hotap == 1 {
            2
        } else {
            1
        };
        for tap in (hstap..=1).rev() {
            if hsz != 2 {
                fhre = ofhre;
            }
            let w = Walk { px: hspx, str_: hspxstr, le: hle2, re: hre2 };
            let acc = rd(new, himg)?;
            *wr(new, himg)? = high(w, tap as usize, hp0, hp1, osfac, &mut fhre, acc)?;
            himg += pstr;
        }
    }
    Ok(())
}
