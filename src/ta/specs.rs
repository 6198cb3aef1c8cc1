//! The function table: each indicator's name, group, inputs, parameters
//! (with TA-Lib's defaults and ranges) and outputs, and the checks of
//! parameters against it.

use super::kernels::{I_C, I_H, I_L, I_O, I_V};

pub struct Param {
    pub name: &'static str,
    pub default: f64,
    pub min: f64,
    pub max: f64,
    pub int: bool,
}

const fn int(name: &'static str, default: f64, min: f64) -> Param {
    Param {
        name,
        default,
        min,
        max: 100000.0,
        int: true,
    }
}

const fn matype(name: &'static str, default: f64) -> Param {
    Param {
        name,
        default,
        min: 0.0,
        max: 8.0,
        int: true,
    }
}

const fn real(name: &'static str, default: f64, min: f64, max: f64) -> Param {
    Param {
        name,
        default,
        min,
        max,
        int: false,
    }
}

pub struct Spec {
    pub name: &'static str,
    pub group: &'static str,
    pub title: &'static str,
    pub inputs: &'static [&'static str],
    pub params: &'static [Param],
    pub outputs: &'static [&'static str],
}

const R: &[&str] = &["real"];

const HL: &[&str] = &["high", "low"];

const HLC: &[&str] = &["high", "low", "close"];

const HLCV: &[&str] = &["high", "low", "close", "volume"];

const OUT1: &[&str] = &["real"];

const BANDS: &[&str] = &["upperband", "middleband", "lowerband"];

const MACD_OUT: &[&str] = &["macd", "macdsignal", "macdhist"];

const BIG: f64 = 3e37;

macro_rules! spec {
    ($name:literal, $group:literal, $title:literal, $inputs:expr, [$($p:expr),*], $outputs:expr) => {
        Spec {
            name: $name,
            group: $group,
            title: $title,
            inputs: $inputs,
            params: &[$($p),*],
            outputs: $outputs,
        }
    };
}

pub static SPECS: &[Spec] = &[
    spec!(
        "SMA",
        "Overlap Studies",
        "Simple Moving Average",
        R,
        [int("timeperiod", 30.0, 1.0)],
        OUT1
    ),
    spec!(
        "EMA",
        "Overlap Studies",
        "Exponential Moving Average",
        R,
        [int("timeperiod", 30.0, 1.0)],
        OUT1
    ),
    spec!(
        "WMA",
        "Overlap Studies",
        "Weighted Moving Average",
        R,
        [int("timeperiod", 30.0, 1.0)],
        OUT1
    ),
    spec!(
        "DEMA",
        "Overlap Studies",
        "Double Exponential Moving Average",
        R,
        [int("timeperiod", 30.0, 1.0)],
        OUT1
    ),
    spec!(
        "TEMA",
        "Overlap Studies",
        "Triple Exponential Moving Average",
        R,
        [int("timeperiod", 30.0, 1.0)],
        OUT1
    ),
    spec!(
        "TRIMA",
        "Overlap Studies",
        "Triangular Moving Average",
        R,
        [int("timeperiod", 30.0, 1.0)],
        OUT1
    ),
    spec!(
        "KAMA",
        "Overlap Studies",
        "Kaufman Adaptive Moving Average",
        R,
        [int("timeperiod", 30.0, 1.0)],
        OUT1
    ),
    spec!(
        "MAMA",
        "Overlap Studies",
        "MESA Adaptive Moving Average",
        R,
        [
            real("fastlimit", 0.5, 0.01, 0.99),
            real("slowlimit", 0.05, 0.01, 0.99)
        ],
        &["mama", "fama"]
    ),
    spec!(
        "T3",
        "Overlap Studies",
        "Triple Exponential Moving Average (T3)",
        R,
        [int("timeperiod", 5.0, 1.0), real("vfactor", 0.7, 0.0, 1.0)],
        OUT1
    ),
    spec!(
        "MA",
        "Overlap Studies",
        "Moving average",
        R,
        [int("timeperiod", 30.0, 1.0), matype("matype", 0.0)],
        OUT1
    ),
    spec!(
        "BBANDS",
        "Overlap Studies",
        "Bollinger Bands",
        R,
        [
            int("timeperiod", 20.0, 2.0),
            real("nbdevup", 2.0, -BIG, BIG),
            real("nbdevdn", 2.0, -BIG, BIG),
            matype("matype", 0.0)
        ],
        BANDS
    ),
    spec!(
        "SAR",
        "Overlap Studies",
        "Parabolic SAR",
        HL,
        [
            real("acceleration", 0.02, 0.0, BIG),
            real("maximum", 0.2, 0.0, BIG)
        ],
        OUT1
    ),
    spec!(
        "MIDPOINT",
        "Overlap Studies",
        "MidPoint over period",
        R,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "MIDPRICE",
        "Overlap Studies",
        "Midpoint Price over period",
        HL,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "RSI",
        "Momentum Indicators",
        "Relative Strength Index",
        R,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "MACD",
        "Momentum Indicators",
        "Moving Average Convergence/Divergence",
        R,
        [
            int("fastperiod", 12.0, 2.0),
            int("slowperiod", 26.0, 2.0),
            int("signalperiod", 9.0, 1.0)
        ],
        MACD_OUT
    ),
    spec!(
        "MACDEXT",
        "Momentum Indicators",
        "MACD with controllable MA type",
        R,
        [
            int("fastperiod", 12.0, 2.0),
            matype("fastmatype", 0.0),
            int("slowperiod", 26.0, 2.0),
            matype("slowmatype", 0.0),
            int("signalperiod", 9.0, 1.0),
            matype("signalmatype", 0.0)
        ],
        MACD_OUT
    ),
    spec!(
        "STOCH",
        "Momentum Indicators",
        "Stochastic",
        HLC,
        [
            int("fastk_period", 5.0, 1.0),
            int("slowk_period", 3.0, 1.0),
            matype("slowk_matype", 0.0),
            int("slowd_period", 3.0, 1.0),
            matype("slowd_matype", 0.0)
        ],
        &["slowk", "slowd"]
    ),
    spec!(
        "STOCHF",
        "Momentum Indicators",
        "Stochastic Fast",
        HLC,
        [
            int("fastk_period", 5.0, 1.0),
            int("fastd_period", 3.0, 1.0),
            matype("fastd_matype", 0.0)
        ],
        &["fastk", "fastd"]
    ),
    spec!(
        "STOCHRSI",
        "Momentum Indicators",
        "Stochastic Relative Strength Index",
        R,
        [
            int("timeperiod", 14.0, 2.0),
            int("fastk_period", 5.0, 1.0),
            int("fastd_period", 3.0, 1.0),
            matype("fastd_matype", 0.0)
        ],
        &["fastk", "fastd"]
    ),
    spec!(
        "ADX",
        "Momentum Indicators",
        "Average Directional Movement Index",
        HLC,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "ADXR",
        "Momentum Indicators",
        "Average Directional Movement Index Rating",
        HLC,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "DX",
        "Momentum Indicators",
        "Directional Movement Index",
        HLC,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "PLUS_DI",
        "Momentum Indicators",
        "Plus Directional Indicator",
        HLC,
        [int("timeperiod", 14.0, 1.0)],
        OUT1
    ),
    spec!(
        "MINUS_DI",
        "Momentum Indicators",
        "Minus Directional Indicator",
        HLC,
        [int("timeperiod", 14.0, 1.0)],
        OUT1
    ),
    spec!(
        "PLUS_DM",
        "Momentum Indicators",
        "Plus Directional Movement",
        HL,
        [int("timeperiod", 14.0, 1.0)],
        OUT1
    ),
    spec!(
        "MINUS_DM",
        "Momentum Indicators",
        "Minus Directional Movement",
        HL,
        [int("timeperiod", 14.0, 1.0)],
        OUT1
    ),
    spec!(
        "CCI",
        "Momentum Indicators",
        "Commodity Channel Index",
        HLC,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "MFI",
        "Momentum Indicators",
        "Money Flow Index",
        HLCV,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "MOM",
        "Momentum Indicators",
        "Momentum",
        R,
        [int("timeperiod", 10.0, 1.0)],
        OUT1
    ),
    spec!(
        "ROC",
        "Momentum Indicators",
        "Rate of change : ((price/prevPrice)-1)*100",
        R,
        [int("timeperiod", 10.0, 1.0)],
        OUT1
    ),
    spec!(
        "ROCP",
        "Momentum Indicators",
        "Rate of change Percentage: (price-prevPrice)/prevPrice",
        R,
        [int("timeperiod", 10.0, 1.0)],
        OUT1
    ),
    spec!(
        "WILLR",
        "Momentum Indicators",
        "Williams' %R",
        HLC,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "APO",
        "Momentum Indicators",
        "Absolute Price Oscillator",
        R,
        [
            int("fastperiod", 12.0, 2.0),
            int("slowperiod", 26.0, 2.0),
            matype("matype", 1.0)
        ],
        OUT1
    ),
    spec!(
        "PPO",
        "Momentum Indicators",
        "Percentage Price Oscillator",
        R,
        [
            int("fastperiod", 12.0, 2.0),
            int("slowperiod", 26.0, 2.0),
            matype("matype", 1.0)
        ],
        OUT1
    ),
    spec!(
        "CMO",
        "Momentum Indicators",
        "Chande Momentum Oscillator",
        R,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "AROON",
        "Momentum Indicators",
        "Aroon",
        HL,
        [int("timeperiod", 14.0, 2.0)],
        &["aroondown", "aroonup"]
    ),
    spec!(
        "AROONOSC",
        "Momentum Indicators",
        "Aroon Oscillator",
        HL,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "ULTOSC",
        "Momentum Indicators",
        "Ultimate Oscillator",
        HLC,
        [
            int("timeperiod1", 7.0, 1.0),
            int("timeperiod2", 14.0, 1.0),
            int("timeperiod3", 28.0, 1.0)
        ],
        OUT1
    ),
    spec!(
        "TRIX",
        "Momentum Indicators",
        "1-day Rate-Of-Change (ROC) of a Triple Smooth EMA",
        R,
        [int("timeperiod", 30.0, 1.0)],
        OUT1
    ),
    spec!(
        "BOP",
        "Momentum Indicators",
        "Balance Of Power",
        &["open", "high", "low", "close"],
        [],
        OUT1
    ),
    spec!(
        "ATR",
        "Volatility Indicators",
        "Average True Range",
        HLC,
        [int("timeperiod", 14.0, 1.0)],
        OUT1
    ),
    spec!(
        "NATR",
        "Volatility Indicators",
        "Normalized Average True Range",
        HLC,
        [int("timeperiod", 14.0, 1.0)],
        OUT1
    ),
    spec!(
        "TRANGE",
        "Volatility Indicators",
        "True Range",
        HLC,
        [],
        OUT1
    ),
    spec!(
        "OBV",
        "Volume Indicators",
        "On Balance Volume",
        &["real", "volume"],
        [],
        OUT1
    ),
    spec!(
        "AD",
        "Volume Indicators",
        "Chaikin A/D Line",
        HLCV,
        [],
        OUT1
    ),
    spec!(
        "ADOSC",
        "Volume Indicators",
        "Chaikin A/D Oscillator",
        HLCV,
        [int("fastperiod", 3.0, 2.0), int("slowperiod", 10.0, 2.0)],
        OUT1
    ),
    spec!(
        "STDDEV",
        "Statistic Functions",
        "Standard Deviation",
        R,
        [int("timeperiod", 5.0, 2.0), real("nbdev", 1.0, -BIG, BIG)],
        OUT1
    ),
    spec!(
        "VAR",
        "Statistic Functions",
        "Variance",
        R,
        [int("timeperiod", 5.0, 1.0), real("nbdev", 1.0, -BIG, BIG)],
        OUT1
    ),
    spec!(
        "LINEARREG",
        "Statistic Functions",
        "Linear Regression",
        R,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "LINEARREG_SLOPE",
        "Statistic Functions",
        "Linear Regression Slope",
        R,
        [int("timeperiod", 14.0, 2.0)],
        OUT1
    ),
    spec!(
        "MAX",
        "Math Operators",
        "Highest value over a specified period",
        R,
        [int("timeperiod", 30.0, 2.0)],
        OUT1
    ),
    spec!(
        "MIN",
        "Math Operators",
        "Lowest value over a specified period",
        R,
        [int("timeperiod", 30.0, 2.0)],
        OUT1
    ),
    spec!(
        "SUM",
        "Math Operators",
        "Summation",
        R,
        [int("timeperiod", 30.0, 2.0)],
        OUT1
    ),
    spec!(
        "TYPPRICE",
        "Price Transform",
        "Typical Price",
        HLC,
        [],
        OUT1
    ),
    // Beyond TA-Lib.
    spec!(
        "VWAP",
        "Volume Indicators",
        "Volume Weighted Average Price of the typical price (cumulative when timeperiod is 0)",
        HLCV,
        [int("timeperiod", 0.0, 0.0)],
        OUT1
    ),
    spec!(
        "KELTNER",
        "Volatility Indicators",
        "Keltner Channels: MA(close) +/- multiplier * ATR",
        HLC,
        [
            int("timeperiod", 20.0, 1.0),
            int("atr_period", 10.0, 1.0),
            real("multiplier", 2.0, -BIG, BIG),
            matype("matype", 1.0)
        ],
        BANDS
    ),
    spec!(
        "DONCHIAN",
        "Volatility Indicators",
        "Donchian Channels: highest high, midpoint, lowest low",
        HL,
        [int("timeperiod", 20.0, 1.0)],
        BANDS
    ),
    spec!(
        "ICHIMOKU",
        "Overlap Studies",
        "Ichimoku lines (not shifted): tenkan, kijun, senkou A, senkou B",
        HL,
        [
            int("tenkan_period", 9.0, 1.0),
            int("kijun_period", 26.0, 1.0),
            int("senkou_period", 52.0, 1.0)
        ],
        &["tenkan", "kijun", "senkou_a", "senkou_b"]
    ),
];

pub fn spec(name: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.name == name)
}

/// The input bit of an input name.
pub fn input_bit(input: &str) -> u8 {
    match input {
        "open" => I_O,
        "high" => I_H,
        "low" => I_L,
        "volume" => I_V,
        _ => I_C,
    }
}

/// Input bit mask of a spec.
pub fn mask(s: &Spec) -> u8 {
    let mut m = 0;
    for i in s.inputs {
        m |= input_bit(i);
    }
    m
}

/// Checks parameters against the spec; the message names the parameter.
pub fn check_params(s: &Spec, params: &[f64]) -> Result<(), String> {
    if params.len() != s.params.len() {
        return Err(format!(
            "{} takes {} parameters, got {}",
            s.name,
            s.params.len(),
            params.len()
        ));
    }
    for (p, v) in s.params.iter().zip(params) {
        if v.is_nan() || *v < p.min || *v > p.max || (p.int && v.fract() != 0.0) {
            let kind = if p.int { "an integer" } else { "a number" };
            return Err(format!(
                "{}: {} must be {} in [{}, {}], got {}",
                s.name, p.name, kind, p.min, p.max, v
            ));
        }
    }
    Ok(())
}
