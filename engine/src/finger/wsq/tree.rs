//! Subband geometry (NBIS tree.c): the wavelet tree and the quantisation tree.

use super::{MAX_SUBBANDS, W_TREELEN};

/// A node of the wavelet tree: a 2-D split of the region at (x, y) of lenx x leny.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct WNode {
    pub(super) x: i32,
    pub(super) y: i32,
    pub(super) lenx: i32,
    pub(super) leny: i32,
    pub(super) inv_rw: bool,
    pub(super) inv_cl: bool,
}

/// A subband of the quantisation tree: its region.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct QNode {
    pub(super) x: i32,
    pub(super) y: i32,
    pub(super) lenx: i32,
    pub(super) leny: i32,
}

/// The 20-node wavelet tree: where each 2-D split happens and at what size.
pub(super) fn build_w_tree(width: i32, height: i32) -> [WNode; W_TREELEN] {
    let mut w = [WNode::default(); W_TREELEN];
    for n in [2, 4, 7, 9, 11, 13, 16, 18] {
        w[n].inv_rw = true;
    }
    for n in [3, 5, 8, 9, 12, 13, 17, 18] {
        w[n].inv_cl = true;
    }
    w_tree4(&mut w, 0, 1, width, height, 0, 0, true);
    let (lenx, lenx2) = if w[1].lenx % 2 == 0 {
        (w[1].lenx / 2, w[1].lenx / 2)
    } else {
        ((w[1].lenx + 1) / 2, (w[1].lenx + 1) / 2 - 1)
    };
    let (leny, leny2) = if w[1].leny % 2 == 0 {
        (w[1].leny / 2, w[1].leny / 2)
    } else {
        ((w[1].leny + 1) / 2, (w[1].leny + 1) / 2 - 1)
    };
    w_tree4(&mut w, 4, 6, lenx2, leny, lenx, 0, false);
    w_tree4(&mut w, 5, 10, lenx, leny2, 0, leny, false);
    w_tree4(&mut w, 14, 15, lenx, leny, 0, 0, false);
    w[19].x = 0;
    w[19].y = 0;
    w[19].lenx = (w[15].lenx + 1) / 2; // = lenx / 2 when even
    w[19].leny = (w[15].leny + 1) / 2;
    w
}

#[allow(clippy::too_many_arguments)]
fn w_tree4(w: &mut [WNode; W_TREELEN], p1: usize, p2: usize, lenx: i32, leny: i32, x: i32, y: i32, stop1: bool) {
    w[p1].x = x;
    w[p1].y = y;
    w[p1].lenx = lenx;
    w[p1].leny = leny;
    w[p2].x = x;
    w[p2 + 2].x = x;
    w[p2].y = y;
    w[p2 + 1].y = y;
    if lenx % 2 == 0 {
        w[p2].lenx = lenx / 2;
        w[p2 + 1].lenx = w[p2].lenx;
    } else if p1 == 4 {
        w[p2].lenx = (lenx - 1) / 2;
        w[p2 + 1].lenx = w[p2].lenx + 1;
    } else {
        w[p2].lenx = (lenx + 1) / 2;
        w[p2 + 1].lenx = w[p2].lenx - 1;
    }
    w[p2 + 1].x = w[p2].lenx + x;
    if !stop1 {
        w[p2 + 3].lenx = w[p2 + 1].lenx;
        w[p2 + 3].x = w[p2 + 1].x;
    }
    w[p2 + 2].lenx = w[p2].lenx;
    if leny % 2 == 0 {
        w[p2].leny = leny / 2;
        w[p2 + 2].leny = w[p2].leny;
    } else if p1 == 5 {
        w[p2].leny = (leny - 1) / 2;
        w[p2 + 2].leny = w[p2].leny + 1;
    } else {
        w[p2].leny = (leny + 1) / 2;
        w[p2 + 2].leny = w[p2].leny - 1;
    }
    w[p2 + 2].y = w[p2].leny + y;
    if !stop1 {
        w[p2 + 3].leny = w[p2 + 2].leny;
        w[p2 + 3].y = w[p2 + 2].y;
    }
    w[p2 + 1].leny = w[p2].leny;
}

/// The 64-node quantisation tree: position and size of each subband (60..64, the finest
/// diagonal detail, are placed but never coded).
pub(super) fn build_q_tree(w: &[WNode; W_TREELEN]) -> [QNode; MAX_SUBBANDS] {
    let mut q = [QNode::default(); MAX_SUBBANDS];
    q_tree16(&mut q, 3, w[14], false, false);
    q_tree16(&mut q, 19, w[4], false, true);
    q_tree16(&mut q, 48, w[0], false, false);
    q_tree16(&mut q, 35, w[5], true, false);
    q_tree4(&mut q, 0, w[19].lenx, w[19].leny, w[19].x, w[19].y);
    q
}

fn q_tree16(q: &mut [QNode; MAX_SUBBANDS], p: usize, n: WNode, rw: bool, cl: bool) {
    let (lenx, leny, x, y) = (n.lenx, n.leny, n.x, n.y);
    let (tempx, temp2x) = if lenx % 2 == 0 {
        (lenx / 2, lenx / 2)
    } else if cl {
        ((lenx + 1) / 2 - 1, (lenx + 1) / 2)
    } else {
        ((lenx + 1) / 2, (lenx + 1) / 2 - 1)
    };
    let (tempy, temp2y) = if leny % 2 == 0 {
        (leny / 2, leny / 2)
    } else if rw {
        ((leny + 1) / 2 - 1, (leny + 1) / 2)
    } else {
        ((leny + 1) / 2, (leny + 1) / 2 - 1)
    };
    // the top-left quarter splits like q_tree4
    q_tree4(q, p, tempx, tempy, x, y);
    // top-right
    q[p + 4].x = x + tempx;
    q[p + 6].x = q[p + 4].x;
    q[p + 4].y = y;
    q[p + 5].y = y;
    q[p + 6].y = q[p + 2].y;
    q[p + 7].y = q[p + 2].y;
    q[p + 4].leny = q[p].leny;
    q[p + 5].leny = q[p].leny;
    q[p + 6].leny = q[p + 2].leny;
    q[p + 7].leny = q[p + 2].leny;
    if temp2x % 2 == 0 {
        q[p + 4].lenx = temp2x / 2;
        q[p + 5].lenx = q[p + 4].lenx;
        q[p + 6].lenx = q[p + 4].lenx;
        q[p + 7].lenx = q[p + 4].lenx;
    } else {
        q[p + 5].lenx = (temp2x + 1) / 2;
        q[p + 4].lenx = q[p + 5].lenx - 1;
        q[p + 6].lenx = q[p + 4].lenx;
        q[p + 7].lenx = q[p + 5].lenx;
    }
    q[p + 5].x = q[p + 4].x + q[p + 4].lenx;
    q[p + 7].x = q[p + 5].x;
    // bottom-left
    q[p + 8].x = x;
    q[p + 9].x = q[p + 1].x;
    q[p + 10].x = x;
    q[p + 11].x = q[p + 1].x;
    q[p + 8].y = y + tempy;
    q[p + 9].y = q[p + 8].y;
    q[p + 8].lenx = q[p].lenx;
    q[p + 9].lenx = q[p + 1].lenx;
    q[p + 10].lenx = q[p].lenx;
    q[p + 11].lenx = q[p + 1].lenx;
    if temp2y % 2 == 0 {
        q[p + 8].leny = temp2y / 2;
        q[p + 9].leny = q[p + 8].leny;
        q[p + 10].leny = q[p + 8].leny;
        q[p + 11].leny = q[p + 8].leny;
    } else {
        q[p + 10].leny = (temp2y + 1) / 2;
        q[p + 11].leny = q[p + 10].leny;
        q[p + 8].leny = q[p + 10].leny - 1;
        q[p + 9].leny = q[p + 8].leny;
    }
    q[p + 10].y = q[p + 8].y + q[p + 8].leny;
    q[p + 11].y = q[p + 10].y;
    // bottom-right
    q[p + 12].x = q[p + 4].x;
    q[p + 13].x = q[p + 5].x;
    q[p + 14].x = q[p + 4].x;
    q[p + 15].x = q[p + 5].x;
    q[p + 12].y = q[p + 8].y;
    q[p + 13].y = q[p + 8].y;
    q[p + 14].y = q[p + 10].y;
    q[p + 15].y = q[p + 10].y;
    q[p + 12].lenx = q[p + 4].lenx;
    q[p + 13].lenx = q[p + 5].lenx;
    q[p + 14].lenx = q[p + 4].lenx;
    q[p + 15].lenx = q[p + 5].lenx;
    q[p + 12].leny = q[p + 8].leny;
    q[p + 13].leny = q[p + 8].leny;
    q[p + 14].leny = q[p + 10].leny;
    q[p + 15].leny = q[p + 10].leny;
}

fn q_tree4(q: &mut [QNode; MAX_SUBBANDS], p: usize, lenx: i32, leny: i32, x: i32, y: i32) {
    q[p].x = x;
    q[p + 2].x = x;
    q[p].y = y;
    q[p + 1].y = y;
    if lenx % 2 == 0 {
        q[p].lenx = lenx / 2;
        q[p + 1].lenx = q[p].lenx;
    } else {
        q[p].lenx = (lenx + 1) / 2;
        q[p + 1].lenx = q[p].lenx - 1;
    }
    q[p + 2].lenx = q[p].lenx;
    q[p + 3].lenx = q[p + 1].lenx;
    q[p + 1].x = x + q[p].lenx;
    q[p + 3].x = q[p + 1].x;
    if leny % 2 == 0 {
        q[p].leny = leny / 2;
        q[p + 1].leny = q[p].leny;
        q[p + 2].leny = q[p].leny;
    } else {
        q[p].leny = (leny + 1) / 2;
        q[p + 1].leny = q[p].leny;
        q[p + 2].leny = q[p].leny - 1;
    }
    q[p + 3].leny = q[p + 2].leny;
    q[p + 2].y = y + q[p].leny;
    q[p + 3].y = q[p + 2].y;
}
