//! What every state machine shares: the bar it reads, the outputs it
//! returns, the input bits and the `Kernel` trait.

pub const MAXOUT: usize = 4;

pub type Out = [f64; MAXOUT];

#[derive(Clone, Copy, Debug, Default)]
pub struct Bar {
    pub o: f64,
    pub h: f64,
    pub l: f64,
    pub c: f64,
    pub v: f64,
}

/// Input bits.
pub const I_O: u8 = 1;

pub const I_H: u8 = 2;

pub const I_L: u8 = 4;

pub const I_C: u8 = 8;

pub const I_V: u8 = 16;

pub trait Kernel {
    /// Pushes one bar; returns the outputs once warmed up.
    fn next(&mut self, b: &Bar) -> Option<Out>;
}

impl<K: Kernel + ?Sized> Kernel for Box<K> {
    #[inline(always)]
    fn next(&mut self, b: &Bar) -> Option<Out> {
        (**self).next(b)
    }
}

#[inline(always)]
pub(super) fn o1(v: f64) -> Out {
    [v, 0.0, 0.0, 0.0]
}

/// TA-Lib's true range: the largest of high-low, |high-prev close| and
/// |low-prev close| (branch-free; inputs are never NaN here).
#[inline(always)]
pub fn true_range(h: f64, l: f64, pc: f64) -> f64 {
    (h - l).max((h - pc).abs()).max((l - pc).abs())
}
