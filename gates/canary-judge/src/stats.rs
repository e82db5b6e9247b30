//! Small, dependency-free statistics for the canary judge.
//!
//! Every public function is total: it never panics, never indexes out of
//! bounds and never hands back a silent NaN. Degenerate input (empty samples,
//! zero variance, non-finite values, out-of-range parameters) gives `None`.
//! The only exceptions are the scalar distribution functions [`normal_sf`] and
//! [`normal_cdf`], which are defined for every non-NaN `f64` (including the
//! infinities) and simply propagate a NaN argument.
//!
//! Each function names the scipy / numpy / statsmodels routine it reproduces;
//! `reference/make_reference.py` computes the expected values and the tests at
//! the bottom of this file check them (tolerances are stated per test).

/// Direction of a one- or two-sided test.
///
/// `Greater` means "x tends to be larger than y" (scipy `alternative="greater"`,
/// statsmodels `alternative="larger"`); `Less` is the mirror image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// H1: the two samples differ in either direction.
    TwoSided,
    /// H1: x tends to be larger than y.
    Greater,
    /// H1: x tends to be smaller than y.
    Less,
}

/// Result of [`mann_whitney`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// Mann–Whitney U statistic of `x` (scipy's `statistic`, i.e. U1), whatever
    /// the alternative.
    pub u: f64,
    /// Asymptotic p-value, in `[0, 1]`.
    pub p_value: f64,
}

/// Result of [`brown_forsythe`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levene {
    /// Levene's W computed on absolute deviations from the group medians.
    pub statistic: f64,
    /// Upper-tail p-value of W under F(k − 1, N − k), in `[0, 1]`.
    pub p_value: f64,
}

/// Result of a z-test ([`two_proportion_z`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZTest {
    /// The standardised test statistic.
    pub z: f64,
    /// p-value for the requested alternative, in `[0, 1]`.
    pub p_value: f64,
}

/// Largest number of pairwise differences (`x.len() * y.len()`) that
/// [`hodges_lehmann`] will materialise: 4 000 000 differences are 32 MB of
/// `f64`. Larger inputs get `None`; subsample before calling.
pub const MAX_PAIRS: usize = 4_000_000;

fn positive_finite(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

fn all_finite(xs: &[f64]) -> bool {
    xs.iter().all(|v| v.is_finite())
}

// ---------------------------------------------------------------------------
// Order statistics
// ---------------------------------------------------------------------------

/// Median of a scratch buffer, computed like `numpy.median`: the middle
/// element for odd lengths, `(a + b) / 2` of the two middle elements for even
/// lengths. Reorders `v`. `None` if `v` is empty or the result is not finite.
fn median_in_place(v: &mut [f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (left, upper, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    let m = if n % 2 == 1 {
        upper
    } else {
        // All of `left` is <= upper; its maximum is the lower middle element.
        let lower = left.iter().copied().max_by(f64::total_cmp)?;
        let s = lower + upper;
        if s.is_finite() {
            s / 2.0
        } else {
            lower / 2.0 + upper / 2.0
        }
    };
    m.is_finite().then_some(m)
}

/// Median of `data`, matching `numpy.median(data)` (mean of the two middle
/// values for an even count). The input need not be sorted.
///
/// `None` if `data` is empty or contains NaN or ±inf.
pub fn median(data: &[f64]) -> Option<f64> {
    if !all_finite(data) {
        return None;
    }
    median_in_place(&mut data.to_vec())
}

/// The `q`-quantile of `data` with linear interpolation between order
/// statistics, matching numpy's default `numpy.quantile(data, q)`
/// (`method="linear"`, Hyndman & Fan type 7, including numpy's
/// two-sided lerp formula). The input need not be sorted.
///
/// `None` if `data` is empty, contains NaN or ±inf, or `q` is outside `[0, 1]`
/// (or NaN).
#[allow(
    dead_code,
    reason = "tested public API; the gate may not call it (yet)"
)]
pub fn quantile(data: &[f64], q: f64) -> Option<f64> {
    if data.is_empty() || !(0.0..=1.0).contains(&q) || !all_finite(data) {
        return None;
    }
    let n = data.len();
    let virtual_index = (n - 1) as f64 * q;
    let previous = virtual_index.floor();
    let gamma = virtual_index - previous;
    // `previous` is in [0, n - 1]; `as` saturates, and min() keeps us in range.
    let lo = (previous as usize).min(n - 1);
    let mut v = data.to_vec();
    let (_, a, rest) = v.select_nth_unstable_by(lo, f64::total_cmp);
    let a = *a;
    // Everything in `rest` is >= a, so its minimum is order statistic lo + 1.
    let b = rest.iter().copied().min_by(f64::total_cmp).unwrap_or(a);
    let diff = b - a;
    let r = if !diff.is_finite() {
        a * (1.0 - gamma) + b * gamma
    } else if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    };
    r.is_finite().then_some(r)
}

// ---------------------------------------------------------------------------
// Normal distribution
// ---------------------------------------------------------------------------

// W. J. Cody, "Rational Chebyshev approximations for the error function",
// Math. Comp. 23 (1969), coefficients as published in his CALERF (netlib
// specfun). Kept verbatim, hence more digits than an f64 holds.
#[allow(clippy::excessive_precision)]
const ERF_A: [f64; 5] = [
    3.16112374387056560e00,
    1.13864154151050156e02,
    3.77485237685302021e02,
    3.20937758913846947e03,
    1.85777706184603153e-1,
];
#[allow(clippy::excessive_precision)]
const ERF_B: [f64; 4] = [
    2.36012909523441209e01,
    2.44024637934444173e02,
    1.28261652607737228e03,
    2.84423683343917062e03,
];
#[allow(clippy::excessive_precision)]
const ERF_C: [f64; 9] = [
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
];
#[allow(clippy::excessive_precision)]
const ERF_D: [f64; 8] = [
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
];
#[allow(clippy::excessive_precision)]
const ERF_P: [f64; 6] = [
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
];
#[allow(clippy::excessive_precision)]
const ERF_Q: [f64; 5] = [
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
];
/// 1 / sqrt(pi).
const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3;
/// sqrt(2 pi).
const SQRT_2PI: f64 = 2.506_628_274_631_000_7;
/// Cody's break point between the erf and erfc approximations.
const ERF_SMALL: f64 = 0.46875;

/// erf(x) for |x| <= 0.46875 (Cody, first interval).
fn erf_small(x: f64) -> f64 {
    let ysq = x * x;
    let mut num = ERF_A[4] * ysq;
    let mut den = ysq;
    for (a, b) in ERF_A.iter().zip(ERF_B.iter()).take(3) {
        num = (num + a) * ysq;
        den = (den + b) * ysq;
    }
    x * (num + ERF_A[3]) / (den + ERF_B[3])
}

/// Scaled complement exp(y^2) * erfc(y) for y > 0.46875 (Cody, second and
/// third intervals). Returns 0 for y = +inf.
fn erfcx_positive(y: f64) -> f64 {
    if y <= 4.0 {
        let mut num = ERF_C[8] * y;
        let mut den = y;
        for (c, d) in ERF_C.iter().zip(ERF_D.iter()).take(7) {
            num = (num + c) * y;
            den = (den + d) * y;
        }
        (num + ERF_C[7]) / (den + ERF_D[7])
    } else {
        let ysq = 1.0 / (y * y);
        let mut num = ERF_P[5] * ysq;
        let mut den = ysq;
        for (p, q) in ERF_P.iter().zip(ERF_Q.iter()).take(4) {
            num = (num + p) * ysq;
            den = (den + q) * ysq;
        }
        let r = ysq * (num + ERF_P[4]) / (den + ERF_Q[4]);
        (FRAC_1_SQRT_PI - r) / y
    }
}

/// exp(-z^2 / 2) without the cancellation error of forming z^2 first: z is
/// split into a 4-fractional-bit head (whose square is exact) and a tail, as in
/// Cody's CALERF.
fn exp_neg_half_square(z: f64) -> f64 {
    let a = z.abs();
    if a > 40.0 {
        // exp(-800) underflows; also covers +inf.
        return 0.0;
    }
    let head = (a * 16.0).trunc() / 16.0;
    let tail = (a - head) * (a + head);
    (-0.5 * head * head).exp() * (-0.5 * tail).exp()
}

/// Standard normal survival function P(Z > z), matching
/// `scipy.stats.norm.sf(z)`.
///
/// Uses Cody's rational Chebyshev approximations of erf/erfc with the
/// Gaussian factor exp(-z^2/2) evaluated without cancellation, so the relative
/// error stays around 1e-15 all the way down to sf ≈ 1e-300 (z ≈ 37); results
/// below ~2e-308 are subnormal and lose relative precision, and z > 38.5
/// gives 0. `normal_sf(-inf) = 1`, `normal_sf(inf) = 0`, NaN propagates.
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    let x = z / std::f64::consts::SQRT_2;
    if x.abs() <= ERF_SMALL {
        return 0.5 - 0.5 * erf_small(x);
    }
    let upper = 0.5 * erfcx_positive(x.abs()) * exp_neg_half_square(z);
    if z > 0.0 { upper } else { 1.0 - upper }
}

/// Standard normal cumulative distribution function P(Z <= z), matching
/// `scipy.stats.norm.cdf(z)`; `normal_cdf(z) == normal_sf(-z)`, so it is
/// relatively accurate deep in the lower tail. NaN propagates.
pub fn normal_cdf(z: f64) -> f64 {
    normal_sf(-z)
}

/// Normal CDF minus one half, accurate (relatively) for small |x|.
fn normal_cdf_minus_half(x: f64) -> f64 {
    let t = x / std::f64::consts::SQRT_2;
    if t.abs() <= ERF_SMALL {
        0.5 * erf_small(t)
    } else {
        normal_cdf(x) - 0.5
    }
}

// P. J. Acklam's rational approximation of the normal quantile (relative
// error 1.15e-9 before refinement).
const ACKLAM_A: [f64; 6] = [
    -3.969_683_028_665_376e1,
    2.209_460_984_245_205e2,
    -2.759_285_104_469_687e2,
    1.383_577_518_672_69e2,
    -3.066_479_806_614_716e1,
    2.506_628_277_459_239,
];
const ACKLAM_B: [f64; 5] = [
    -5.447_609_879_822_406e1,
    1.615_858_368_580_409e2,
    -1.556_989_798_598_866e2,
    6.680_131_188_771_972e1,
    -1.328_068_155_288_572e1,
];
const ACKLAM_C: [f64; 6] = [
    -7.784_894_002_430_293e-3,
    -3.223_964_580_411_365e-1,
    -2.400_758_277_161_838,
    -2.549_732_539_343_734,
    4.374_664_141_464_968,
    2.938_163_982_698_783,
];
const ACKLAM_D: [f64; 4] = [
    7.784_695_709_041_462e-3,
    3.224_671_290_700_398e-1,
    2.445_134_137_142_996,
    3.754_408_661_907_416,
];
const ACKLAM_P_LOW: f64 = 0.02425;

fn horner(coeffs: &[f64], x: f64) -> f64 {
    coeffs.iter().fold(0.0, |acc, c| acc * x + c)
}

/// Quantile for p in (0, 0.5]: Acklam's approximation plus one Halley step
/// against [`normal_cdf`].
fn normal_quantile_lower(p: f64) -> f64 {
    let centred = p - 0.5; // exact for p in [0.25, 0.5]
    let x0 = if p < ACKLAM_P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        horner(&ACKLAM_C, q) / (horner(&ACKLAM_D, q) * q + 1.0)
    } else {
        let r = centred * centred;
        horner(&ACKLAM_A, r) * centred / (horner(&ACKLAM_B, r) * r + 1.0)
    };
    // e = cdf(x0) - p, formed so that it is relatively accurate both near the
    // centre (via cdf - 1/2) and in the tail (cdf is relatively accurate).
    let e = if p >= 0.25 {
        normal_cdf_minus_half(x0) - centred
    } else {
        normal_cdf(x0) - p
    };
    // u = e / pdf(x0), written as (e / p) * (p / pdf(x0)) so that it neither
    // overflows nor underflows for tiny p.
    let u = (e / p) * (p.ln() + 0.5 * x0 * x0).exp() * SQRT_2PI;
    let x = x0 - u / (1.0 + 0.5 * x0 * u);
    if x.is_finite() { x } else { x0 }
}

/// Standard normal quantile (inverse CDF), matching `scipy.stats.norm.ppf(p)`.
///
/// Acklam's rational approximation refined by one Halley step, so the accuracy
/// is that of [`normal_cdf`] (relative ~1e-15 for p >= 1e-300). Upper-tail
/// probabilities are mapped through the exact `1 - p` (p >= 0.5), so
/// `normal_quantile(1 - 1e-16)` is as good as `1 - p` lets it be.
///
/// Like scipy (and like [`normal_sf`] / [`normal_cdf`], so that it can feed
/// them and [`wilson_interval`] directly): `-inf` for p = 0, `+inf` for p = 1,
/// and NaN for p outside `[0, 1]` or NaN. Those non-finite results are never
/// silently used downstream: [`wilson_interval`] and [`newcombe_difference`]
/// return `None` for a non-finite critical value.
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p > 0.5 {
        -normal_quantile_lower(1.0 - p)
    } else {
        normal_quantile_lower(p)
    }
}

// ---------------------------------------------------------------------------
// Gamma / beta / F
// ---------------------------------------------------------------------------

// Lanczos approximation, g = 7, n = 9 (Godfrey's coefficients); relative error
// of Gamma about 1e-15 for positive arguments.
#[allow(clippy::excessive_precision)]
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_93,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_13,
    -176.615_029_162_140_59,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_571_6e-6,
    1.505_632_735_149_311_6e-7,
];
/// ln(sqrt(2 pi)).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// ln Gamma(x) for finite x > 0 (Lanczos, g = 7). NaN for other input; only
/// called on validated arguments.
fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x < 0.5 {
        // Gamma(x) = Gamma(x + 1) / x keeps the series in its good range.
        return ln_gamma_lanczos(x + 1.0) - x.ln();
    }
    ln_gamma_lanczos(x)
}

fn ln_gamma_lanczos(x: f64) -> f64 {
    let xm1 = x - 1.0;
    let mut sum = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        sum += c / (xm1 + i as f64);
    }
    let t = xm1 + 7.5;
    LN_SQRT_2PI + (xm1 + 0.5) * t.ln() - t + sum.ln()
}

/// Continued fraction for the incomplete beta function (Numerical Recipes
/// `betacf`, modified Lentz). `None` if it fails to converge.
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> Option<f64> {
    const MAX_ITER: u32 = 100_000;
    const EPS: f64 = f64::EPSILON;
    const TINY: f64 = 1e-300;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=MAX_ITER {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if !h.is_finite() {
            return None;
        }
        if (del - 1.0).abs() <= EPS {
            return Some(h);
        }
    }
    None
}

/// I_x(a, b) given both x and y = 1 - x (each computed accurately by the
/// caller). Parameters are assumed validated.
fn inc_beta_xy(a: f64, b: f64, x: f64, y: f64) -> Option<f64> {
    if x <= 0.0 {
        return Some(0.0);
    }
    if y <= 0.0 {
        return Some(1.0);
    }
    let ln_x = if x > 0.5 { (-y).ln_1p() } else { x.ln() };
    let ln_y = if y > 0.5 { (-x).ln_1p() } else { y.ln() };
    let ln_beta = ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
    let front = (a * ln_x + b * ln_y - ln_beta).exp();
    let value = if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x)? / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, y)? / b
    };
    value.is_finite().then(|| value.clamp(0.0, 1.0))
}

/// Regularized incomplete beta function I_x(a, b), matching
/// `scipy.special.betainc(a, b, x)`.
///
/// Numerical Recipes' continued fraction (modified Lentz) with the usual
/// symmetry switch at x = (a + 1) / (a + b + 2) and ln Gamma by Lanczos.
/// Relative error is ~1e-13 for moderate a, b and grows roughly like
/// 1e-16 * (a + b) * ln(a + b) from ln Gamma cancellation (about 1e-11 at
/// a = b = 5000).
///
/// `None` unless a > 0, b > 0 are finite and 0 <= x <= 1, or if the continued
/// fraction does not converge (only for astronomically large a, b).
#[allow(
    dead_code,
    reason = "tested public API; the gate may not call it (yet)"
)]
pub fn reg_inc_beta(a: f64, b: f64, x: f64) -> Option<f64> {
    let params_ok = a > 0.0 && b > 0.0 && a.is_finite() && b.is_finite();
    if !params_ok || !(0.0..=1.0).contains(&x) {
        return None;
    }
    inc_beta_xy(a, b, x, 1.0 - x)
}

/// Survival function P(F > f) of the F distribution with `d1` numerator and
/// `d2` denominator degrees of freedom, matching `scipy.stats.f.sf(f, d1, d2)`
/// (scipy's `special.fdtrc`). Computed as I_{d2/(d2 + d1 f)}(d2/2, d1/2) via
/// [`reg_inc_beta`]'s machinery, with both x and 1 - x formed without
/// cancellation.
///
/// `Some(1.0)` for f <= 0 (as scipy), `Some(0.0)` for f = +inf. `None` for NaN
/// f, non-positive or non-finite degrees of freedom, or non-convergence.
pub fn f_sf(f: f64, d1: f64, d2: f64) -> Option<f64> {
    let dof_ok = d1 > 0.0 && d2 > 0.0 && d1.is_finite() && d2.is_finite();
    if !dof_ok || f.is_nan() {
        return None;
    }
    if f <= 0.0 {
        return Some(1.0);
    }
    if f == f64::INFINITY {
        return Some(0.0);
    }
    let t = d1 * f;
    let s = d2 + t;
    let (x, y) = if s.is_finite() {
        (d2 / s, t / s)
    } else {
        // d1 * f overflowed: use r = d2 / (d1 f) instead.
        let r = (d2 / d1) / f;
        (r / (1.0 + r), 1.0 / (1.0 + r))
    };
    inc_beta_xy(0.5 * d2, 0.5 * d1, x, y)
}

// ---------------------------------------------------------------------------
// Two-sample tests and estimates
// ---------------------------------------------------------------------------

/// Mann–Whitney U test of `x` against `y`, matching
/// `scipy.stats.mannwhitneyu(x, y, alternative=..., method="asymptotic",
/// use_continuity=True)`: midranks for ties, tie-corrected variance
/// `n1 n2 / 12 * ((n + 1) - sum(t^3 - t) / (n (n - 1)))`, continuity
/// correction 0.5, p from the normal survival function (doubled and clipped
/// to 1 for `TwoSided`, which uses max(U1, U2)).
///
/// `u` is always U1, the statistic of `x` (scipy's `statistic`).
///
/// `None` when either sample is empty, when any value is NaN or ±inf (the
/// caller decides how to treat those), or when all values in both samples are
/// equal (zero variance: no test is possible).
pub fn mann_whitney(x: &[f64], y: &[f64], alt: Alternative) -> Option<MannWhitney> {
    if x.is_empty() || y.is_empty() || !all_finite(x) || !all_finite(y) {
        return None;
    }
    let mut pooled: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    pooled.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));

    let mut rank_sum_x = 0.0;
    let mut tie_term = 0.0;
    let mut start = 0usize; // number of values ranked so far
    let mut groups = 0usize;
    // total_cmp puts -0.0 right before 0.0, and == merges them (as scipy does).
    for group in pooled.chunk_by(|a, b| a.0 == b.0) {
        let len = group.len();
        let in_x = group.iter().filter(|e| e.1).count();
        // Ranks start+1 ..= start+len share the midrank.
        let midrank = (2 * start + len + 1) as f64 / 2.0;
        rank_sum_x += midrank * in_x as f64;
        let t = len as f64;
        tie_term += t * t * t - t;
        start += len;
        groups += 1;
    }
    if groups < 2 {
        return None;
    }

    let n1 = x.len() as f64;
    let n2 = y.len() as f64;
    let n = n1 + n2;
    let u1 = rank_sum_x - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    let (u, factor) = match alt {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let var = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if !positive_finite(var) {
        return None;
    }
    let z = (u - n1 * n2 / 2.0 - 0.5) / var.sqrt();
    let p = (normal_sf(z) * factor).clamp(0.0, 1.0);
    p.is_finite().then_some(MannWhitney { u: u1, p_value: p })
}

/// Hodges–Lehmann estimate of the shift between `x` and `y`: the median of
/// all `x.len() * y.len()` pairwise differences `x_i - y_j`, matching
/// `numpy.median(numpy.subtract.outer(x, y))`. Exact (selection with
/// `select_nth_unstable`, no sorting of the whole set).
///
/// `None` if either sample is empty, any value is NaN or ±inf, the result
/// overflows, or there are more than [`MAX_PAIRS`] (4 000 000)
/// pairs — the cap bounds memory at 32 MB; subsample larger inputs.
pub fn hodges_lehmann(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.is_empty() || y.is_empty() || !all_finite(x) || !all_finite(y) {
        return None;
    }
    let pairs = x.len().checked_mul(y.len())?;
    if pairs > MAX_PAIRS {
        return None;
    }
    let mut diffs = Vec::with_capacity(pairs);
    for &a in x {
        diffs.extend(y.iter().map(|&b| a - b));
    }
    median_in_place(&mut diffs)
}

/// Mean of the absolute deviations from the median, and the group median
/// deviations, for [`brown_forsythe`].
fn abs_deviations_from_median(v: &[f64]) -> Option<(Vec<f64>, f64)> {
    let med = median_in_place(&mut v.to_vec())?;
    let z: Vec<f64> = v.iter().map(|&a| (a - med).abs()).collect();
    let mean = z.iter().sum::<f64>() / z.len() as f64;
    Some((z, mean))
}

/// Brown–Forsythe test for equal variances of two samples: Levene's test on
/// absolute deviations from the group medians, matching
/// `scipy.stats.levene(x, y, center="median")`. The p-value is
/// `f_sf(W, 1, N - 2)`.
///
/// `None` if either sample has fewer than 2 values, any value is NaN or ±inf,
/// or all absolute deviations equal their group mean (zero within-group
/// variance of the deviations: W would be 0/0 or x/0; scipy returns nan/inf).
pub fn brown_forsythe(x: &[f64], y: &[f64]) -> Option<Levene> {
    if x.len() < 2 || y.len() < 2 || !all_finite(x) || !all_finite(y) {
        return None;
    }
    let (zx, mx) = abs_deviations_from_median(x)?;
    let (zy, my) = abs_deviations_from_median(y)?;
    let n1 = x.len() as f64;
    let n2 = y.len() as f64;
    let n = n1 + n2;
    let grand = (n1 * mx + n2 * my) / n;
    let numer = (n - 2.0) * (n1 * (mx - grand).powi(2) + n2 * (my - grand).powi(2));
    let within: f64 = zx.iter().map(|z| (z - mx).powi(2)).sum::<f64>()
        + zy.iter().map(|z| (z - my).powi(2)).sum::<f64>();
    if !positive_finite(within) || !numer.is_finite() {
        return None;
    }
    let w = numer / within;
    let p = f_sf(w, 1.0, n - 2.0)?;
    w.is_finite().then_some(Levene {
        statistic: w,
        p_value: p,
    })
}

// ---------------------------------------------------------------------------
// Proportions
// ---------------------------------------------------------------------------

/// Pooled two-proportion z-test of p_x = x_events / x_n against
/// p_y = y_events / y_n: `z = (p_x - p_y) / sqrt(p (1 - p) (1/x_n + 1/y_n))`
/// with the pooled `p`, matching
/// `statsmodels.stats.proportion.proportions_ztest([x_events, y_events],
/// [x_n, y_n], alternative=...)` (`Greater` = statsmodels "larger": p_x > p_y).
///
/// `None` if a side has n = 0, events exceed n, the counts overflow, or the
/// pooled proportion is 0 or 1 (no variance: no events at all, or all events).
pub fn two_proportion_z(
    x_events: u64,
    x_n: u64,
    y_events: u64,
    y_n: u64,
    alt: Alternative,
) -> Option<ZTest> {
    if x_n == 0 || y_n == 0 || x_events > x_n || y_events > y_n {
        return None;
    }
    let events = x_events.checked_add(y_events)?;
    let total = x_n.checked_add(y_n)?;
    if events == 0 || events == total {
        return None;
    }
    let (xn, yn) = (x_n as f64, y_n as f64);
    let px = x_events as f64 / xn;
    let py = y_events as f64 / yn;
    let pooled = events as f64 / total as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / xn + 1.0 / yn)).sqrt();
    if !positive_finite(se) {
        return None;
    }
    let z = (px - py) / se;
    let p = match alt {
        Alternative::TwoSided => 2.0 * normal_sf(z.abs()),
        Alternative::Greater => normal_sf(z),
        Alternative::Less => normal_cdf(z),
    };
    (z.is_finite() && p.is_finite()).then_some(ZTest {
        z,
        p_value: p.clamp(0.0, 1.0),
    })
}

/// Wilson score interval for a binomial proportion `events / n` at normal
/// critical value `z` (e.g. 1.959963984540054 for 95 %), matching
/// `statsmodels.stats.proportion.proportion_confint(events, n,
/// alpha=2 * norm.sf(z), method="wilson")`, including its clipping to [0, 1].
/// The lower bound is exactly 0 when `events == 0` and the upper bound exactly
/// 1 when `events == n` (statsmodels may be off by ~1e-17 there).
///
/// `None` if n = 0, events > n, or z is negative, NaN or infinite.
pub fn wilson_interval(events: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 || events > n || !z.is_finite() || z < 0.0 {
        return None;
    }
    let nf = n as f64;
    let q = events as f64 / nf;
    let crit2 = z * z;
    let denom = 1.0 + crit2 / nf;
    let center = (q + crit2 / (2.0 * nf)) / denom;
    let dist = z * (q * (1.0 - q) / nf + crit2 / (4.0 * nf * nf)).sqrt() / denom;
    let mut low = (center - dist).clamp(0.0, 1.0);
    let mut high = (center + dist).clamp(0.0, 1.0);
    if events == 0 {
        low = 0.0;
    }
    if events == n {
        high = 1.0;
    }
    (low.is_finite() && high.is_finite()).then_some((low, high))
}

/// Newcombe's hybrid score interval (method 10 of Newcombe 1998) for the
/// difference p_x - p_y, built from the two [`wilson_interval`]s at critical
/// value `z`, matching `statsmodels.stats.proportion.confint_proportions_2indep(
/// x_events, x_n, y_events, y_n, method="newcomb", compare="diff",
/// alpha=2 * norm.sf(z))`.
///
/// `None` under the same conditions as [`wilson_interval`] for either side.
pub fn newcombe_difference(
    x_events: u64,
    x_n: u64,
    y_events: u64,
    y_n: u64,
    z: f64,
) -> Option<(f64, f64)> {
    let (lx, ux) = wilson_interval(x_events, x_n, z)?;
    let (ly, uy) = wilson_interval(y_events, y_n, z)?;
    let px = x_events as f64 / x_n as f64;
    let py = y_events as f64 / y_n as f64;
    let diff = px - py;
    let d_low = ((px - lx).powi(2) + (uy - py).powi(2)).sqrt();
    let d_high = ((py - ly).powi(2) + (ux - px).powi(2)).sqrt();
    let (low, high) = (diff - d_low, diff + d_high);
    (low.is_finite() && high.is_finite()).then_some((low, high))
}

#[cfg(test)]
mod tests {
    //! Reference values come from `reference/make_reference.py` (scipy 1.17.1,
    //! statsmodels 0.15.0, numpy 2.4.6). Each comparison asserts
    //! `|got - want| <= rel * |want|` or `<= abs`, with the tolerances given at
    //! each test; run with `--nocapture` to see the worst error per function.

    use super::*;
    use serde_json::Value;
    use std::sync::OnceLock;

    fn reference() -> &'static Value {
        static REF: OnceLock<Value> = OnceLock::new();
        REF.get_or_init(|| {
            serde_json::from_str(include_str!("../reference/scipy_reference.json"))
                .expect("reference JSON parses")
        })
    }

    fn rows(key: &str) -> &'static [Value] {
        reference()[key]
            .as_array()
            .unwrap_or_else(|| panic!("reference has no array {key}"))
    }

    fn num(v: &Value, key: &str) -> f64 {
        v[key]
            .as_f64()
            .unwrap_or_else(|| panic!("missing number {key} in {v}"))
    }

    fn count(v: &Value, key: &str) -> u64 {
        v[key]
            .as_u64()
            .unwrap_or_else(|| panic!("missing integer {key} in {v}"))
    }

    fn floats(v: &Value) -> Vec<f64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|e| e.as_f64().expect("number"))
            .collect()
    }

    fn sample(name: &str) -> (Vec<f64>, Vec<f64>) {
        let s = &reference()["samples"][name];
        (floats(&s["x"]), floats(&s["y"]))
    }

    fn alternative(v: &Value) -> Alternative {
        match v["alternative"].as_str() {
            Some("two-sided") => Alternative::TwoSided,
            Some("greater") => Alternative::Greater,
            Some("less") => Alternative::Less,
            other => panic!("bad alternative {other:?}"),
        }
    }

    /// Asserts closeness and remembers the worst relative / absolute error.
    struct Worst {
        label: &'static str,
        rel: f64,
        abs: f64,
        checked: usize,
    }

    impl Worst {
        fn new(label: &'static str) -> Self {
            Worst {
                label,
                rel: 0.0,
                abs: 0.0,
                checked: 0,
            }
        }

        fn check(&mut self, got: f64, want: f64, rel_tol: f64, abs_tol: f64, ctx: &str) {
            let err = if got == want { 0.0 } else { (got - want).abs() };
            let rel = if want == 0.0 { err } else { err / want.abs() };
            assert!(
                err <= rel_tol * want.abs() || err <= abs_tol,
                "{}: {ctx}: got {got:e}, want {want:e} (abs err {err:e}, rel err {rel:e})",
                self.label
            );
            // Relative error is only meaningful where the abs floor is not
            // what is being used (e.g. statsmodels' 6.8e-21 vs our exact 0).
            if want.abs() > abs_tol {
                self.rel = self.rel.max(rel);
            }
            self.abs = self.abs.max(err);
            self.checked += 1;
        }
    }

    impl Drop for Worst {
        fn drop(&mut self) {
            eprintln!(
                "worst error {:<24} rel {:.3e}  abs {:.3e}  ({} values)",
                self.label, self.rel, self.abs, self.checked
            );
        }
    }

    // ----- reference comparisons ------------------------------------------

    /// Tolerance rel 1e-12: scipy's own ndtr forms exp(-x*x) and z/sqrt(2)
    /// naively, which costs it ~2e-13 relative near z = 37 (sf ~ 1e-300).
    #[test]
    fn normal_sf_cdf_match_scipy() {
        let mut sf = Worst::new("normal_sf");
        let mut cdf = Worst::new("normal_cdf");
        for r in rows("normal") {
            let z = num(r, "z");
            sf.check(normal_sf(z), num(r, "sf"), 1e-12, 0.0, &format!("z={z}"));
            cdf.check(normal_cdf(z), num(r, "cdf"), 1e-12, 0.0, &format!("z={z}"));
        }
        assert!(sf.checked >= 60);
    }

    /// Tolerance rel 1e-12 (abs 1e-300 only for the exact zero at p = 0.5).
    #[test]
    fn normal_quantile_matches_scipy() {
        let mut w = Worst::new("normal_quantile");
        for r in rows("ppf") {
            // Upper-tail rows give q and mean p = 1 - q (see make_reference.py).
            let p = match r.get("upper_q") {
                Some(q) => 1.0 - q.as_f64().expect("number"),
                None => num(r, "p"),
            };
            let got = normal_quantile(p);
            w.check(got, num(r, "x"), 1e-12, 1e-300, &format!("p={p:e}"));
        }
        assert!(w.checked >= 30);
    }

    /// Tolerance rel 1e-9: ln Gamma via Lanczos loses ~1e-16 * ln Gamma(a + b)
    /// absolutely (~1e-11 relative at a = b = 5000). abs 1e-300 covers results
    /// that underflow.
    #[test]
    fn reg_inc_beta_matches_betainc() {
        let mut w = Worst::new("reg_inc_beta");
        for r in rows("betainc") {
            let (a, b, x) = (num(r, "a"), num(r, "b"), num(r, "x"));
            let got = reg_inc_beta(a, b, x).expect("valid parameters");
            w.check(
                got,
                num(r, "value"),
                1e-9,
                1e-300,
                &format!("a={a} b={b} x={x}"),
            );
        }
        assert!(w.checked >= 200);
    }

    /// Tolerance rel 1e-9 (same reasoning as reg_inc_beta).
    #[test]
    fn f_sf_matches_scipy() {
        let mut w = Worst::new("f_sf");
        for r in rows("f_sf") {
            let (f, d1, d2) = (num(r, "f"), num(r, "d1"), num(r, "d2"));
            let got = f_sf(f, d1, d2).expect("valid parameters");
            w.check(
                got,
                num(r, "value"),
                1e-9,
                1e-300,
                &format!("f={f} d1={d1} d2={d2}"),
            );
        }
        assert!(w.checked >= 150);
    }

    /// Tolerance rel 1e-12 (the algorithm mirrors numpy's, so it is exact in
    /// practice); abs 1e-300 only matters for a reference value of 0.
    #[test]
    fn quantile_and_median_match_numpy() {
        let mut wq = Worst::new("quantile");
        for r in rows("quantile") {
            let data = floats(&r["data"]);
            let q = num(r, "q");
            let got = quantile(&data, q).expect("non-empty finite data");
            wq.check(
                got,
                num(r, "value"),
                1e-12,
                1e-300,
                &format!("n={} q={q}", data.len()),
            );
        }
        let mut wm = Worst::new("median");
        for r in rows("median") {
            let data = floats(&r["data"]);
            let got = median(&data).expect("non-empty finite data");
            wm.check(
                got,
                num(r, "value"),
                1e-12,
                1e-300,
                &format!("n={}", data.len()),
            );
        }
        assert!(wq.checked >= 100 && wm.checked >= 8);
    }

    /// U is compared exactly (half-integers, exact in f64); p with rel 1e-9
    /// (z is exact to a few ulp; the normal tail then amplifies by ~z^2).
    #[test]
    fn mann_whitney_matches_scipy() {
        let mut wu = Worst::new("mann_whitney.u");
        let mut wp = Worst::new("mann_whitney.p");
        for r in rows("mann_whitney") {
            let name = r["name"].as_str().expect("name");
            let (x, y) = sample(name);
            let alt = alternative(r);
            let got = mann_whitney(&x, &y, alt).expect("non-degenerate sample");
            let ctx = format!("{name} {alt:?}");
            wu.check(got.u, num(r, "u"), 0.0, 0.0, &ctx);
            wp.check(got.p_value, num(r, "p"), 1e-9, 0.0, &ctx);
        }
        assert!(wu.checked >= 50);
    }

    /// Exact selection, so the tolerance is rel 1e-12 (observed: 0).
    #[test]
    fn hodges_lehmann_matches_numpy() {
        let mut w = Worst::new("hodges_lehmann");
        for r in rows("hodges_lehmann") {
            let name = r["name"].as_str().expect("name");
            let (x, y) = sample(name);
            let got = hodges_lehmann(&x, &y).expect("within cap");
            w.check(got, num(r, "value"), 1e-12, 0.0, name);
        }
        assert!(w.checked >= 17);
    }

    /// Statistic and p with rel 1e-9 (numpy sums with pairwise summation, we
    /// sum left to right: differences ~1e-14); abs 1e-12 for W = 0 exactly.
    #[test]
    fn brown_forsythe_matches_scipy_levene_median() {
        let mut ws = Worst::new("brown_forsythe.W");
        let mut wp = Worst::new("brown_forsythe.p");
        for r in rows("brown_forsythe") {
            let name = r["name"].as_str().expect("name");
            let (x, y) = sample(name);
            let got = brown_forsythe(&x, &y).expect("non-degenerate");
            ws.check(got.statistic, num(r, "statistic"), 1e-9, 1e-12, name);
            wp.check(got.p_value, num(r, "p"), 1e-9, 0.0, name);
        }
        assert!(ws.checked >= 15);
    }

    /// z with rel 1e-12 (a handful of flops); p with rel 1e-9.
    #[test]
    fn two_proportion_z_matches_statsmodels() {
        let mut wz = Worst::new("two_proportion_z.z");
        let mut wp = Worst::new("two_proportion_z.p");
        for r in rows("two_proportion_z") {
            let (xe, xn) = (count(r, "x_events"), count(r, "x_n"));
            let (ye, yn) = (count(r, "y_events"), count(r, "y_n"));
            let alt = alternative(r);
            let ctx = format!("{xe}/{xn} vs {ye}/{yn} {alt:?}");
            let got = two_proportion_z(xe, xn, ye, yn, alt).expect("has variance");
            wz.check(got.z, num(r, "z"), 1e-12, 0.0, &ctx);
            wp.check(got.p_value, num(r, "p"), 1e-9, 0.0, &ctx);
        }
        assert!(wz.checked >= 36);
    }

    /// rel 1e-12, or abs 1e-15 for bounds at 0 / 1 where statsmodels' clipped
    /// `center - dist` can be ~1e-17 instead of exactly 0.
    #[test]
    fn wilson_matches_statsmodels() {
        let mut w = Worst::new("wilson_interval");
        for r in rows("wilson") {
            let (e, n, z) = (count(r, "events"), count(r, "n"), num(r, "z"));
            let (lo, hi) = wilson_interval(e, n, z).expect("valid");
            let ctx = format!("{e}/{n} z={z}");
            w.check(lo, num(r, "low"), 1e-12, 1e-15, &ctx);
            w.check(hi, num(r, "high"), 1e-12, 1e-15, &ctx);
        }
        assert!(w.checked >= 100);
    }

    /// Same tolerance as the Wilson bounds it is built from.
    #[test]
    fn newcombe_matches_statsmodels() {
        let mut w = Worst::new("newcombe_difference");
        for r in rows("newcombe") {
            let (xe, xn) = (count(r, "x_events"), count(r, "x_n"));
            let (ye, yn) = (count(r, "y_events"), count(r, "y_n"));
            let z = num(r, "z");
            let (lo, hi) = newcombe_difference(xe, xn, ye, yn, z).expect("valid");
            let ctx = format!("{xe}/{xn} vs {ye}/{yn} z={z}");
            w.check(lo, num(r, "low"), 1e-12, 1e-15, &ctx);
            w.check(hi, num(r, "high"), 1e-12, 1e-15, &ctx);
        }
        assert!(w.checked >= 150);
    }

    // ----- degenerate and edge inputs ---------------------------------------

    #[test]
    fn normal_edges() {
        assert_eq!(normal_sf(f64::INFINITY), 0.0);
        assert_eq!(normal_sf(f64::NEG_INFINITY), 1.0);
        assert_eq!(normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
        assert!(normal_sf(f64::NAN).is_nan());
        assert_eq!(normal_sf(0.0), 0.5);
        assert_eq!(normal_sf(40.0), 0.0);
        assert_eq!(normal_sf(1e300), 0.0);
        assert_eq!(normal_sf(-1e300), 1.0);
        // Monotone and in [0, 1] across the branch points.
        let mut prev = 1.0;
        for i in -4000..=4000 {
            let z = f64::from(i) / 100.0;
            let s = normal_sf(z);
            assert!((0.0..=1.0).contains(&s), "z={z} sf={s}");
            assert!(s <= prev, "not monotone at z={z}");
            prev = s;
        }
    }

    #[test]
    fn normal_quantile_edges_and_roundtrip() {
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
        assert_eq!(normal_quantile(0.5), 0.0);
        assert!(normal_quantile(-1e-300).is_nan());
        assert!(normal_quantile(1.0 + 1e-15).is_nan());
        assert!(normal_quantile(f64::NAN).is_nan());
        assert!(normal_quantile(f64::INFINITY).is_nan());
        // ... and such a critical value is refused downstream, not used.
        assert_eq!(wilson_interval(1, 10, normal_quantile(2.0)), None);
        assert_eq!(
            newcombe_difference(1, 10, 2, 10, normal_quantile(1.0)),
            None
        );
        // Subnormal p still gives a finite, sensible answer.
        let x = normal_quantile(5e-324);
        assert!(x.is_finite() && (-38.6..-38.3).contains(&x), "{x}");
        for p in [
            1e-300,
            1e-100,
            1e-12,
            0.001,
            0.0242,
            0.0243,
            0.2,
            0.49,
            0.5 - 1e-13,
        ] {
            let x = normal_quantile(p);
            let back = normal_cdf(x);
            assert!((back - p).abs() <= 1e-13 * p, "p={p:e} x={x} back={back:e}");
            // Exact symmetry: the upper tail is evaluated at the exact 1 - p'
            // (p' = 1 - p as rounded), which is representable.
            let upper = 1.0 - p;
            if upper < 1.0 {
                assert_eq!(
                    normal_quantile(upper),
                    -normal_quantile(1.0 - upper),
                    "p={p:e}"
                );
            }
        }
    }

    #[test]
    fn reg_inc_beta_edges() {
        assert_eq!(reg_inc_beta(0.0, 1.0, 0.5), None);
        assert_eq!(reg_inc_beta(1.0, -1.0, 0.5), None);
        assert_eq!(reg_inc_beta(f64::INFINITY, 1.0, 0.5), None);
        assert_eq!(reg_inc_beta(1.0, 1.0, -0.1), None);
        assert_eq!(reg_inc_beta(1.0, 1.0, 1.1), None);
        assert_eq!(reg_inc_beta(1.0, 1.0, f64::NAN), None);
        assert_eq!(reg_inc_beta(2.0, 3.0, 0.0), Some(0.0));
        assert_eq!(reg_inc_beta(2.0, 3.0, 1.0), Some(1.0));
        // I_x(1, 1) = x; I_x(a, 1) = x^a; symmetry I_x(a, b) = 1 - I_{1-x}(b, a).
        for x in [0.001, 0.2, 0.5, 0.7, 0.999] {
            let u = reg_inc_beta(1.0, 1.0, x).expect("valid");
            assert!((u - x).abs() <= 1e-14 * x, "x={x} u={u}");
            let p = reg_inc_beta(3.5, 1.0, x).expect("valid");
            assert!((p - x.powf(3.5)).abs() <= 1e-13 * x.powf(3.5), "x={x}");
            let s = reg_inc_beta(2.5, 7.0, x).expect("valid")
                + reg_inc_beta(7.0, 2.5, 1.0 - x).expect("valid");
            assert!((s - 1.0).abs() <= 1e-13, "x={x} s={s}");
        }
    }

    #[test]
    fn f_sf_edges() {
        assert_eq!(f_sf(-1.0, 3.0, 4.0), Some(1.0));
        assert_eq!(f_sf(0.0, 3.0, 4.0), Some(1.0));
        assert_eq!(f_sf(f64::INFINITY, 3.0, 4.0), Some(0.0));
        assert_eq!(f_sf(f64::NAN, 3.0, 4.0), None);
        assert_eq!(f_sf(1.0, 0.0, 4.0), None);
        assert_eq!(f_sf(1.0, 3.0, -4.0), None);
        assert_eq!(f_sf(1.0, f64::NAN, 4.0), None);
        assert_eq!(f_sf(1.0, 3.0, f64::INFINITY), None);
        // F(2, 2): sf(f) = 1 / (1 + f), also where d1 * f overflows.
        for f in [0.5, 3.0, 1e10, 1e300, 1e308] {
            let got = f_sf(f, 2.0, 2.0).expect("valid");
            let want = 1.0 / (1.0 + f);
            assert!((got - want).abs() <= 1e-13 * want, "f={f:e} got={got:e}");
        }
    }

    #[test]
    fn median_and_quantile_degenerate() {
        assert_eq!(median(&[]), None);
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
        assert_eq!(median(&[1.0, f64::INFINITY]), None);
        assert_eq!(quantile(&[1.0, f64::NEG_INFINITY], 0.1), None);
        assert_eq!(quantile(&[1.0, 2.0], -0.01), None);
        assert_eq!(quantile(&[1.0, 2.0], 1.01), None);
        assert_eq!(quantile(&[1.0, 2.0], f64::NAN), None);
        assert_eq!(median(&[7.5]), Some(7.5));
        assert_eq!(quantile(&[7.5], 0.0), Some(7.5));
        assert_eq!(quantile(&[7.5], 1.0), Some(7.5));
        assert_eq!(median(&[4.0; 9]), Some(4.0));
        assert_eq!(quantile(&[4.0; 10], 0.37), Some(4.0));
        // Unsorted input, and the caller's slice is left untouched.
        let data = [9.0, 1.0, 5.0, 3.0];
        assert_eq!(median(&data), Some(4.0));
        assert_eq!(quantile(&data, 0.25), Some(2.5));
        assert_eq!(quantile(&data, 1.0), Some(9.0));
        assert_eq!(data, [9.0, 1.0, 5.0, 3.0]);
        // The midpoint of the two extreme finite values overflows naively.
        assert_eq!(median(&[f64::MAX, f64::MAX]), Some(f64::MAX));
        assert_eq!(median(&[-f64::MAX, f64::MAX]), Some(0.0));
        assert_eq!(quantile(&[-f64::MAX, f64::MAX], 0.5), Some(0.0));
    }

    #[test]
    fn mann_whitney_degenerate() {
        let alt = Alternative::TwoSided;
        assert_eq!(mann_whitney(&[], &[1.0], alt), None);
        assert_eq!(mann_whitney(&[1.0], &[], alt), None);
        assert_eq!(mann_whitney(&[1.0, f64::NAN], &[2.0], alt), None);
        assert_eq!(mann_whitney(&[1.0], &[f64::INFINITY], alt), None);
        // All values equal across both samples: zero variance.
        assert_eq!(mann_whitney(&[3.0; 5], &[3.0; 7], alt), None);
        assert_eq!(mann_whitney(&[0.0, -0.0], &[0.0], alt), None);
        // One element each, different: U1 = 1, z = (1 - 0.5 - 0.5) / s = 0.
        let r = mann_whitney(&[2.0], &[1.0], alt).expect("two distinct values");
        assert_eq!(r.u, 1.0);
        assert_eq!(r.p_value, 1.0);
        let g = mann_whitney(&[2.0], &[1.0], Alternative::Greater).expect("ok");
        assert_eq!(g.p_value, 0.5);
        // Each side constant but different: well defined.
        let c = mann_whitney(&[5.0; 30], &[1.0; 30], Alternative::Greater).expect("ok");
        assert_eq!(c.u, 900.0);
        assert!(c.p_value < 1e-10, "{}", c.p_value);
        // U1 + U2 = n1 n2 and Less(x, y) == Greater(y, x).
        let (x, y) = sample("small_ties");
        let less = mann_whitney(&x, &y, Alternative::Less).expect("ok");
        let greater_yx = mann_whitney(&y, &x, Alternative::Greater).expect("ok");
        assert_eq!(less.p_value, greater_yx.p_value);
        assert_eq!(less.u + greater_yx.u, (x.len() * y.len()) as f64);
    }

    #[test]
    fn hodges_lehmann_degenerate_and_cap() {
        assert_eq!(hodges_lehmann(&[], &[1.0]), None);
        assert_eq!(hodges_lehmann(&[1.0], &[]), None);
        assert_eq!(hodges_lehmann(&[f64::NAN], &[1.0]), None);
        assert_eq!(hodges_lehmann(&[1.0], &[f64::NEG_INFINITY]), None);
        assert_eq!(hodges_lehmann(&[5.0], &[2.0]), Some(3.0));
        assert_eq!(hodges_lehmann(&[2.0; 4], &[2.0; 3]), Some(0.0));
        // x - y overflows to +inf for every pair.
        assert_eq!(hodges_lehmann(&[f64::MAX], &[-f64::MAX]), None);
        // Shift equivariance: adding 10 to x adds 10 to the estimate.
        assert_eq!(hodges_lehmann(&[11.0, 12.0, 14.0], &[1.0, 2.0]), Some(10.5));
        // The cap: 2000 x 2000 is allowed (tested against numpy), 2001 x 2000
        // is refused without allocating the differences.
        let big_x = vec![1.0; 2001];
        let big_y = vec![0.0; 2000];
        assert_eq!(hodges_lehmann(&big_x, &big_y), None);
        assert_eq!(hodges_lehmann(&big_x[..2000], &big_y), Some(1.0));
        assert_eq!(hodges_lehmann(&vec![0.0; 4_000_001], &[0.0]), None);
    }

    #[test]
    fn brown_forsythe_degenerate() {
        assert_eq!(brown_forsythe(&[1.0], &[1.0, 2.0]), None);
        assert_eq!(brown_forsythe(&[1.0, 2.0], &[]), None);
        assert_eq!(brown_forsythe(&[1.0, f64::NAN], &[1.0, 2.0]), None);
        assert_eq!(brown_forsythe(&[1.0, 2.0], &[1.0, f64::INFINITY]), None);
        // All deviations from the medians are equal within each group
        // (scipy returns nan here).
        assert_eq!(brown_forsythe(&[1.0, 2.0], &[1.5, 2.5]), None);
        assert_eq!(brown_forsythe(&[3.0; 4], &[3.0; 6]), None);
        // Identical groups: W = 0 exactly, p = 1.
        let same = [1.0, 4.0, 2.0, 8.0, 5.0];
        let r = brown_forsythe(&same, &same).expect("ok");
        assert_eq!(r.statistic, 0.0);
        assert_eq!(r.p_value, 1.0);
        // A constant group against a varying one is well defined.
        let c = brown_forsythe(&[3.0; 5], &[1.0, 5.0, 2.0, 9.0, 4.0]).expect("ok");
        assert!(c.statistic > 0.0 && c.p_value > 0.0 && c.p_value < 1.0);
    }

    #[test]
    fn two_proportion_z_degenerate() {
        let alt = Alternative::TwoSided;
        assert_eq!(two_proportion_z(0, 0, 1, 10, alt), None);
        assert_eq!(two_proportion_z(1, 10, 0, 0, alt), None);
        assert_eq!(two_proportion_z(11, 10, 1, 10, alt), None);
        // Pooled proportion 0 or 1.
        assert_eq!(two_proportion_z(0, 100, 0, 100, alt), None);
        assert_eq!(two_proportion_z(50, 50, 50, 50, alt), None);
        assert_eq!(two_proportion_z(u64::MAX, u64::MAX, 1, 2, alt), None);
        // Equal proportions: z = 0, p = 1.
        let r = two_proportion_z(10, 100, 20, 200, alt).expect("ok");
        assert_eq!(r.z, 0.0);
        assert_eq!(r.p_value, 1.0);
        // Antisymmetry.
        let a = two_proportion_z(3, 100, 9, 120, Alternative::Greater).expect("ok");
        let b = two_proportion_z(9, 120, 3, 100, Alternative::Less).expect("ok");
        assert_eq!(a.z, -b.z);
        assert_eq!(a.p_value, b.p_value);
    }

    #[test]
    fn wilson_and_newcombe_degenerate() {
        let z = 1.959_963_984_540_054;
        assert_eq!(wilson_interval(0, 0, z), None);
        assert_eq!(wilson_interval(3, 2, z), None);
        assert_eq!(wilson_interval(1, 2, -1.0), None);
        assert_eq!(wilson_interval(1, 2, f64::NAN), None);
        assert_eq!(wilson_interval(1, 2, f64::INFINITY), None);
        assert_eq!(wilson_interval(1, 4, 0.0), Some((0.25, 0.25)));
        let (lo, hi) = wilson_interval(0, 10, z).expect("ok");
        assert_eq!(lo, 0.0);
        assert!(hi > 0.2 && hi < 0.35, "{hi}");
        let (lo, hi) = wilson_interval(10, 10, z).expect("ok");
        assert_eq!(hi, 1.0);
        assert!(lo > 0.65 && lo < 0.8, "{lo}");
        // Huge n stays finite and brackets p.
        let (lo, hi) = wilson_interval(u64::MAX / 2, u64::MAX, z).expect("ok");
        assert!(lo < 0.5 && hi > 0.5 && hi - lo < 1e-9);

        assert_eq!(newcombe_difference(1, 0, 1, 10, z), None);
        assert_eq!(newcombe_difference(1, 10, 11, 10, z), None);
        assert_eq!(newcombe_difference(1, 10, 1, 10, -z), None);
        // Both sides zero: interval around 0, symmetric.
        let (lo, hi) = newcombe_difference(0, 100, 0, 100, z).expect("ok");
        assert!(lo < 0.0 && hi > 0.0);
        assert!((lo + hi).abs() <= 1e-15);
        // The point estimate lies inside, and the interval stays in [-1, 1].
        for (xe, xn, ye, yn) in [(1, 10, 0, 10), (5, 100_000, 40, 100_000), (7, 7, 0, 9)] {
            let (lo, hi) = newcombe_difference(xe, xn, ye, yn, z).expect("ok");
            let d = xe as f64 / xn as f64 - ye as f64 / yn as f64;
            assert!(
                -1.0 <= lo && lo <= d && d <= hi && hi <= 1.0,
                "{xe}/{xn} {ye}/{yn}"
            );
        }
    }
}
