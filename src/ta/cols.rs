//! The data layout every whole-array loop works on: the input columns of one
//! series and the output rows it fills, and the CPU feature check that picks
//! the loops' compiled variant.

use super::kernels::{Bar, I_C, I_H, I_L, I_O, I_V};

/// The input columns of one series. Columns an indicator does not read
/// alias one it does, so that every slice is valid for `n` bars.
#[derive(Clone, Copy)]
pub struct Cols<'a> {
    pub o: &'a [f64],
    pub h: &'a [f64],
    pub l: &'a [f64],
    pub c: &'a [f64],
    pub v: &'a [f64],
    pub n: usize,
}

impl<'a> Cols<'a> {
    /// Builds the columns from (bit, slice) pairs; all slices have length `n`.
    pub fn new(cols: &[(u8, &'a [f64])]) -> Self {
        let first: &'a [f64] = cols.first().map(|c| c.1).unwrap_or(&[]);
        let pick = |bit: u8| -> &'a [f64] {
            cols.iter()
                .find(|(b, _)| *b & bit != 0)
                .map(|c| c.1)
                .unwrap_or(first)
        };
        Cols {
            o: pick(I_O),
            h: pick(I_H),
            l: pick(I_L),
            c: pick(I_C),
            v: pick(I_V),
            n: first.len(),
        }
    }

    /// The bars from `begin` to `n` (every column is at least `n` long).
    #[inline(always)]
    pub fn range(&self, begin: usize, n: usize) -> Cols<'a> {
        Cols {
            o: &self.o[begin..n],
            h: &self.h[begin..n],
            l: &self.l[begin..n],
            c: &self.c[begin..n],
            v: &self.v[begin..n],
            n: n - begin,
        }
    }

    #[inline(always)]
    pub(crate) fn bar(&self, i: usize) -> Bar {
        Bar {
            o: self.o[i],
            h: self.h[i],
            l: self.l[i],
            c: self.c[i],
            v: self.v[i],
        }
    }

    #[inline(always)]
    pub(crate) fn has_nan(&self, i: usize, mask: u8) -> bool {
        (mask & I_O != 0 && self.o[i].is_nan())
            || (mask & I_H != 0 && self.h[i].is_nan())
            || (mask & I_L != 0 && self.l[i].is_nan())
            || (mask & I_C != 0 && self.c[i].is_nan())
            || (mask & I_V != 0 && self.v[i].is_nan())
    }
}

/// Bars checked between two looks at the cancellation flag.
pub const CHUNK: usize = 1 << 16;

/// Output rows of one series: `nout` slices of length `n`.
pub struct OutRows<'a> {
    pub rows: Vec<&'a mut [f64]>,
}

impl OutRows<'_> {
    #[inline(always)]
    pub(crate) fn put(&mut self, i: usize, r: Option<[f64; 4]>) {
        match r {
            Some(v) => {
                for (j, row) in self.rows.iter_mut().enumerate() {
                    row[i] = v[j];
                }
            }
            None => {
                for row in self.rows.iter_mut() {
                    row[i] = f64::NAN;
                }
            }
        }
    }
}

/// True when the CPU has fused multiply-add instructions and AVX2: the loops
/// are then compiled with them (the kernels use `mul_add`, which is exactly
/// rounded either way, and AVX2 only widens vectorised element-wise loops,
/// whose IEEE operations round the same; results do not depend on this).
pub fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *FMA.get_or_init(|| {
            std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("avx2")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}
