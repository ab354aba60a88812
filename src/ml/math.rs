//! The logarithm the models use, in plain arithmetic: the same bits on every platform (unlike
//! the C library's `logf`), and cheaper. Exponentials use [`crate::profile::counter::exp2_neg`].

/// Natural logarithm of a positive `f32`, to a relative error below 1e-6: the exponent is read
/// from the float's bits and an odd series in `(m − 1)/(m + 1)` covers the mantissa `m`, kept
/// within `[√½, √2)`. 0 gives −∞; negative numbers and NaN give NaN.
#[inline]
pub(crate) fn ln(x: f32) -> f32 {
    if x.is_nan() || x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 {
        return f32::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let (x, bias) = if x < f32::MIN_POSITIVE {
        (x * 8_388_608.0, 23)
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127 - bias;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series = 2.0 * t * (1.0 + t2 * (1.0 / 3.0 + t2 * (0.2 + t2 * (1.0 / 7.0 + t2 / 9.0))));
    e as f32 * std::f32::consts::LN_2 + series
}

/// `ln(1 + x)` for `x >= 0`.
#[inline]
pub(crate) fn ln_1p(x: f32) -> f32 {
    ln(1.0 + x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_standard_logarithm() {
        for x in [
            1e-40f32, 1e-30, 1e-6, 0.001, 0.5, 0.70710677, 0.9, 1.0, 1.0001, 1.5, 2.0, 3.0, 10.0,
            1234.5, 1e10, 3.4e38,
        ] {
            let (a, b) = (ln(x), x.ln());
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "ln({x}) = {a}, expected {b}"
            );
        }
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
        assert_eq!(ln_1p(0.0), 0.0);
    }
}
