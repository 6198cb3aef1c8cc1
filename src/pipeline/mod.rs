//! The analysis pipeline's kernels: OHLCV resampling (batch, matrix and
//! incremental) and the market-regime classifier.

pub mod py;
pub mod regime;
pub mod resample;
