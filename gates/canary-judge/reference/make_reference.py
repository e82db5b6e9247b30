#!/usr/bin/env python3
"""Reference values for gates/canary-judge/src/stats.rs.

The Rust tests read scipy_reference.json (this script's output) with
include_str!, so regenerate it whenever a case is added here.

Versions used to produce the committed scipy_reference.json (Python 3.11.7):

    numpy==2.4.6  scipy==1.17.1  statsmodels==0.15.0
    (statsmodels pulled in pandas==3.1.1 and patsy==1.0.3)

To rerun (from this directory):

    python3 -m venv /tmp/v
    /tmp/v/bin/pip install numpy==2.4.6 scipy==1.17.1 statsmodels==0.15.0
    /tmp/v/bin/python make_reference.py > scipy_reference.json

The output is deterministic: all random samples come from
numpy.random.default_rng with fixed seeds, and every input array is written
into the JSON next to the expected values, so the Rust side never needs to
reproduce numpy's RNG.  Only finite numbers are written (json allow_nan=False);
infinite / NaN / degenerate cases are asserted directly in the Rust tests.
"""

import json
import sys

import numpy as np
import scipy
import scipy.special as sp
import scipy.stats as st
import statsmodels
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

ALTS = ["two-sided", "greater", "less"]
# statsmodels spells the one-sided alternatives differently.
SM_ALT = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


def fl(a):
    return [float(v) for v in a]


def samples():
    """Named (x, y) pairs used by Mann-Whitney, Hodges-Lehmann, Brown-Forsythe."""
    out = []
    # Small hand-made samples, with ties inside and across groups.
    out.append(("small_ties", [1.0, 2.0, 2.0, 3.0, 5.0], [2.0, 3.0, 3.0, 4.0]))
    out.append(("small_no_ties", [0.5, 1.7, 2.2, 9.1], [0.1, 0.4, 1.1, 3.3, 4.4, 5.0]))
    out.append(("one_vs_many", [3.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    out.append(("integers_heavy_ties", [1, 1, 1, 2, 2, 3, 3, 3, 3, 4], [2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]))
    out.append(("separated", [10.0, 11.0, 12.0, 13.0, 14.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    out.append(("negative_and_zero", [-0.0, 0.0, -1.5, 2.25, -3.0], [0.0, 1.0, -1.0, 0.0]))
    out.append(("two_each", [1.0, 2.0], [1.5, 2.5]))

    rng = np.random.default_rng(20240611)
    # Identical distributions, moderate and large sizes.
    out.append(("normal_same_200", rng.normal(0, 1, 200), rng.normal(0, 1, 200)))
    out.append(("normal_same_2000", rng.normal(100, 15, 2000), rng.normal(100, 15, 2000)))
    # Identical groups (same array on both sides).
    same = rng.normal(5, 2, 300)
    out.append(("identical_arrays_300", same, same.copy()))
    # Shifted groups.
    out.append(("normal_shift_500", rng.normal(0.2, 1, 500), rng.normal(0, 1, 700)))
    out.append(("lognormal_shift_1000", rng.lognormal(3.0, 0.8, 1000), rng.lognormal(2.9, 0.8, 1200)))
    out.append(("exponential_1500_vs_800", rng.exponential(2.0, 1500), rng.exponential(2.3, 800)))
    # Latency-like data quantised to whole milliseconds (many ties).
    out.append(("poisson_ties_1000", rng.poisson(20, 1000).astype(float), rng.poisson(21, 900).astype(float)))
    # Equal medians (both symmetric around 10) but very different spread:
    # Brown-Forsythe should reject, Mann-Whitney should not.
    out.append(("equal_median_diff_var_400", rng.normal(10, 1, 400), rng.normal(10, 3, 400)))
    out.append(("equal_median_diff_var_laplace_1800", rng.laplace(0, 1, 1800), rng.laplace(0, 1.15, 1700)))
    # Largest Hodges-Lehmann case allowed by the cap: 2000 * 2000 = 4e6 pairs.
    out.append(("hl_at_cap_2000x2000", rng.normal(1.0, 1, 2000), rng.normal(0.9, 1, 2000)))
    # Far apart: p-values deep in the normal tail (~1e-90).
    out.append(("far_shift_300", rng.normal(3.0, 1, 300), rng.normal(0.0, 1, 300)))
    return [(n, fl(x), fl(y)) for n, x, y in out]


def main():
    ref = {
        "meta": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "statsmodels": statsmodels.__version__,
        }
    }

    # ---- normal distribution -------------------------------------------------
    zs = [0.0, 1e-300, 1e-10, 0.1, 0.3, 0.46875 * np.sqrt(2), 0.5, 0.6629, 0.663, 0.7, 1.0,
          1.2815515655446004, 1.6448536269514722, 1.959963984540054, 2.5, 3.0, 4.0,
          5.0, 5.656854249492381, 5.66, 6.0, 7.5, 8.0, 10.0, 12.5, 15.0, 20.0, 25.0,
          30.0, 33.3, 35.0, 36.0, 37.0, 37.5]
    zs = sorted(set(zs + [-z for z in zs]))
    ref["normal"] = [{"z": z, "sf": float(st.norm.sf(z)), "cdf": float(st.norm.cdf(z))} for z in zs]

    ps = [1e-300, 1e-250, 1e-200, 1e-100, 1e-50, 1e-20, 1e-10, 1e-5, 1e-3, 0.01, 0.025,
          0.02425, 0.0243, 0.05, 0.1, 0.25, 0.3, 0.4, 0.5 - 1e-9, 0.5 - 1e-15, 0.5,
          0.5 + 1e-12, 0.6]
    ref["ppf"] = [{"p": p, "x": float(st.norm.ppf(p))} for p in ps]
    # Upper tail: p = 1 - q is ill-conditioned as a decimal (a parser that is
    # off by one ulp near 1 changes 1 - p by up to 100 %), so these rows carry
    # q and the reader forms p = 1.0 - q itself, in the same IEEE arithmetic.
    # q = 2**-53 gives p = 0.9999999999999999, the largest double below 1.
    for q in [0.25, 0.1, 0.05, 0.025, 0.02425, 0.01, 1e-3, 1e-10, 1e-15, 2.0**-53]:
        p = 1.0 - q
        ref["ppf"].append({"p": p, "upper_q": q, "x": float(st.norm.ppf(p))})

    # ---- regularized incomplete beta ----------------------------------------
    ab = [(0.5, 0.5), (0.5, 1.0), (1.0, 1.0), (2.5, 0.5), (0.5, 2.5), (3.0, 7.0),
          (10.0, 10.0), (50.0, 0.5), (0.5, 50.0), (100.0, 3.0), (1000.0, 0.5),
          (1999.0, 0.5), (0.5, 1999.0), (500.0, 700.0), (5000.0, 5000.0)]
    xs = [0.0, 1e-12, 1e-6, 0.01, 0.1, 0.25, 0.45, 0.5, 0.55, 0.75, 0.9, 0.99, 0.999999, 1.0]
    beta = []
    for a, b in ab:
        for x in xs:
            beta.append({"a": a, "b": b, "x": x, "value": float(sp.betainc(a, b, x))})
    ref["betainc"] = beta

    # ---- F survival function -------------------------------------------------
    fcases = []
    for d1, d2 in [(1, 1), (1, 2), (1, 5), (1, 38), (1, 398), (1, 3998), (2, 10), (3, 30), (5, 2),
                   (10, 20), (0.5, 7.5), (40, 4000)]:
        for f in [0.0, 1e-8, 0.01, 0.5, 1.0, 1.5, 2.0, 3.84, 10.0, 50.0, 100.0, 1e4, 1e8]:
            fcases.append({"f": f, "d1": d1, "d2": d2, "value": float(st.f.sf(f, d1, d2))})
    ref["f_sf"] = fcases

    # ---- quantiles / median --------------------------------------------------
    rng = np.random.default_rng(7)
    qdata = [
        [3.0],
        [2.0, 1.0],
        [5.0, 1.0, 4.0, 2.0, 3.0],
        [1.0, 1.0, 1.0, 1.0],
        [-1e300, 1e300, 0.0],
        fl(rng.normal(0, 1, 101)),
        fl(rng.exponential(1.0, 1000)),
        fl(np.round(rng.normal(50, 10, 250))),
    ]
    qs = [0.0, 0.01, 0.05, 0.1, 0.25, 1 / 3, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]
    ref["quantile"] = [
        {"data": d, "q": q, "value": float(np.quantile(np.array(d), q))} for d in qdata for q in qs
    ]
    ref["median"] = [{"data": d, "value": float(np.median(np.array(d)))} for d in qdata]

    # ---- two-sample tests ----------------------------------------------------
    mw, hl, lev = [], [], []
    for name, x, y in samples():
        xa, ya = np.array(x), np.array(y)
        for alt in ALTS:
            r = st.mannwhitneyu(xa, ya, alternative=alt, method="asymptotic", use_continuity=True)
            mw.append({"name": name, "x": x, "y": y, "alternative": alt,
                       "u": float(r.statistic), "p": float(r.pvalue)})
        if len(x) * len(y) <= 4_000_000:
            hl.append({"name": name, "x": x, "y": y,
                       "value": float(np.median(np.subtract.outer(xa, ya)))})
        if len(x) >= 2 and len(y) >= 2 and name != "identical_arrays_300":
            with np.errstate(invalid="ignore", divide="ignore"):
                # two_each has all-zero within-group deviations -> nan (stats.rs: None)
                r = st.levene(xa, ya, center="median")
            if np.isfinite(r.statistic):
                lev.append({"name": name, "x": x, "y": y,
                            "statistic": float(r.statistic), "p": float(r.pvalue)})
    # identical_arrays_300 gives statistic 0 / p 1: keep it, it is finite.
    for name, x, y in samples():
        if name == "identical_arrays_300":
            r = st.levene(np.array(x), np.array(y), center="median")
            lev.append({"name": name, "x": x, "y": y,
                        "statistic": float(r.statistic), "p": float(r.pvalue)})
    # Avoid storing the big arrays three times: tests look arrays up by name.
    arrays = {}
    for rows in (mw, hl, lev):
        for row in rows:
            arrays[row["name"]] = {"x": row.pop("x"), "y": row.pop("y")}
    ref["samples"] = arrays
    ref["mann_whitney"] = mw
    ref["hodges_lehmann"] = hl
    ref["brown_forsythe"] = lev

    # ---- proportions ---------------------------------------------------------
    pcases = [(0, 100, 0, 100), (0, 100, 3, 100), (3, 100, 0, 100), (1, 10, 0, 10), (1, 10, 2, 10),
              (5, 100000, 2, 100000), (5, 100000, 40, 100000), (120, 1000, 100, 1000),
              (50, 50, 49, 50), (50, 50, 50, 50), (7, 7, 0, 9), (30, 200, 10, 50),
              (1, 1, 0, 1), (999, 1000, 1000, 1000), (1234, 56789, 1100, 50000)]
    zt = []
    for xe, xn, ye, yn in pcases:
        pooled = (xe + ye) / (xn + yn)
        if pooled in (0.0, 1.0):
            continue
        diff = xe / xn - ye / yn
        se = np.sqrt(pooled * (1 - pooled) * (1 / xn + 1 / yn))
        z = diff / se
        for alt in ALTS:
            if alt == "two-sided":
                p = 2 * st.norm.sf(abs(z))
            elif alt == "greater":
                p = st.norm.sf(z)
            else:
                p = st.norm.cdf(z)
            z_sm, p_sm = proportions_ztest([xe, ye], [xn, yn], alternative=SM_ALT[alt])
            # Cross-check: the hand formula and statsmodels are the same test.
            assert abs(z - z_sm) <= 1e-12 * max(1.0, abs(z)), (xe, xn, ye, yn, z, z_sm)
            assert abs(p - p_sm) <= 1e-12 * max(1e-300, abs(p)), (xe, xn, ye, yn, p, p_sm)
            zt.append({"x_events": xe, "x_n": xn, "y_events": ye, "y_n": yn, "alternative": alt,
                       "z": float(z), "p": float(p)})
    ref["two_proportion_z"] = zt

    crits = [1.0, 1.6448536269514722, 1.959963984540054, 2.5758293035489004, 3.290526731491926]
    wil, newc = [], []
    for z in crits:
        # alpha such that statsmodels' norm.isf(alpha / 2) == z (to rounding);
        # written with sf rather than 1 - cdf to avoid cancellation.
        alpha = 2 * st.norm.sf(z)
        for events, n in [(0, 1), (1, 1), (0, 10), (1, 10), (10, 10), (5, 100000), (0, 100000),
                          (50, 100), (1, 3), (17, 1000), (99999, 100000)]:
            lo, hi = proportion_confint(events, n, alpha=alpha, method="wilson")
            wil.append({"events": events, "n": n, "z": z, "low": float(lo), "high": float(hi)})
        for xe, xn, ye, yn in pcases:
            lo, hi = confint_proportions_2indep(xe, xn, ye, yn, method="newcomb", compare="diff",
                                                alpha=alpha)
            newc.append({"x_events": xe, "x_n": xn, "y_events": ye, "y_n": yn, "z": z,
                         "low": float(lo), "high": float(hi)})
    ref["wilson"] = wil
    ref["newcombe"] = newc

    json.dump(ref, sys.stdout, allow_nan=False, indent=None, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
