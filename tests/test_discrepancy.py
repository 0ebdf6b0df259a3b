"""Band models learned from held-out runs: scoring, learning a planted discrepancy, leaving a source out."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayescale.core.discrepancy import (allocation_scores, bands, leave_one_source_out, learn, records, score_runs,
                                   summarise)
from bayescale.core.form import FormUncertainty, growth

PLANTED = FormUncertainty(loss_scale=0.03, loss_residual_power=0.0, loss_power=1.5, loss_offset=0.2, spread=0.0, shape=1.0,
                          allocation_scale=0.1, allocation_residual_power=0.0, allocation_power=1.0)


def _split(source, k, rng, n_runs=25, n_levels=6, draws=200, truth=PLANTED):
    """One split's held-out draws where the truth lies off the law by the planted discrepancy.

    The law's curve draws are exact (a point mass at the law, small noise), so every miss beyond the noise
    is the discrepancy: one standard Normal draw per split, shared by its runs, as a ladder's form error is.
    """
    beyond = rng.uniform(0.05, 2.0, n_runs)
    law = np.log(2.0 + rng.uniform(0, 1, n_runs))
    floor = np.full(draws, 1.5)
    z = rng.standard_normal()
    scale = truth.loss_scale_for(0.01, 1.0)
    loss = np.exp(law)
    truth_log = np.log(1.5 + (loss - 1.5) * np.exp(z * scale * growth(beyond, truth.loss_power, truth.loss_offset)
                                                   / ((loss - 1.5) / loss)))
    noise_sd = 0.002
    level_beyond = np.linspace(0.2, 2.0, n_levels)
    n_opt = np.full((draws, n_levels), 9.0) + 0.01 * rng.standard_normal((draws, n_levels))
    observed_n = 9.0 + rng.standard_normal() * truth.allocation_scale * growth(level_beyond, truth.allocation_power)
    f = float(np.median((loss - 1.5) / loss))
    return xr.Dataset(
        {"log_curve": (("sample", "run"), np.repeat(law[None], draws, 0)),
         "noise": (("sample", "run"), noise_sd * rng.standard_normal((draws, n_runs))),
         "floor": (("sample",), floor),
         "observed": (("run",), truth_log + noise_sd * rng.standard_normal(n_runs)),
         "beyond": (("run",), beyond), "beyond_C": (("run",), beyond),
         "C": (("run",), 10 ** (20 + beyond)), "N": (("run",), np.full(n_runs, 1e9)),
         "D": (("run",), np.full(n_runs, 2e10)),
         "log10_n_opt": (("sample", "level"), n_opt), "observed_log10_n_opt": (("level",), np.array(observed_n)),
         "level_C": (("level",), 10 ** (20 + level_beyond)), "level_beyond_C": (("level",), level_beyond)},
        attrs={"split": f"{source}/l{k}@C<1e20", "source": source, "ladder": f"{source}/l{k}",
               "evidence": f"{source}/l{k}", "law": "chinchilla", "cut": 1e20, "converged": 1, "fit_seconds": 1.0,
               "residual_scale": 0.01, "reducible_fraction": f, "span_C": 2.0, "n_train": 30, "n_sizes": 6,
               "tpp_span": 1.0})


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    return records([_split(f"s{s}", k, rng) for s in range(6) for k in range(8)])


def test_weights_give_every_source_the_same_total(planted):
    w = pd.Series(planted.weight).groupby(planted.frame["source"]).sum()
    np.testing.assert_allclose(w.to_numpy(), 1 / 6, rtol=1e-12)
    assert len(planted) == 6 * 8 * 25 and planted.n_draws == 200


def test_the_form_known_bands_miss_and_the_planted_model_covers(planted):
    known = summarise(score_runs(planted, None)).set_index("source").loc["all"]
    right = summarise(score_runs(planted, PLANTED)).set_index("source").loc["all"]
    # 48 splits, each one shared draw of the planted discrepancy: coverage is a mean of 48 nearly independent
    # splits' shares, sd about 0.3/sqrt(48) = 0.045 at 90%; 3 sd either side
    assert 0.76 < right["coverage_90"] < 1.0 and 0.3 < right["coverage_50"] < 0.7
    assert known["coverage_90"] < 0.3 and right["wis"] < 0.8 * known["wis"]  # 0.61 measured (seed 0)


def test_learning_recovers_the_planted_discrepancy(planted):
    start = FormUncertainty(loss_scale=0.01, loss_residual_power=0.0, loss_power=1.0, loss_offset=0.1,
                            spread=0.1, allocation_scale=0.03, allocation_residual_power=0.0)
    form = learn(planted, start, fixed=("loss_residual_power", "allocation_residual_power", "loss_bias"))
    # 48 draws of the discrepancy pin its scale to about 1/sqrt(2 x 48) = 10% (sd); the shape trades off
    # with the scale, so the check is on the sd at the distances the runs cover
    for d in (0.5, 1.0, 1.5):
        assert form.loss_sd(0.01, d) == pytest.approx(PLANTED.loss_sd(0.01, d), rel=0.35)
    assert form.allocation_scale == pytest.approx(PLANTED.allocation_scale, rel=0.5)


@pytest.mark.parametrize("seed", [0, 1])
def test_learned_bands_hold_their_probability_of_the_runs_they_are_learned_on(seed):
    """Misses heavier-tailed than the band model's Normal shape: the interval score's own minimum under-covers.

    Measured over data seeds 0-2: score only, 90% band 0.871-0.880 and 50% band 0.448-0.532; with the floor
    (the default) 0.900-0.909 and 0.500-0.557 at an interval score 0.1-0.5% higher. Coverage moves in steps of
    one run's weight (1/1200), so the floor is checked to within 0.005; the score to within 2%.
    """
    from dataclasses import replace

    rng = np.random.default_rng(seed)
    rec = records([_split(f"s{s}", k, rng, truth=replace(PLANTED, spread=0.8)) for s in range(6) for k in range(8)])
    fixed = ("loss_residual_power", "loss_bias", "spread", "shape", "loss_offset", "loss_power", "allocation_scale",
             "allocation_residual_power", "allocation_power")
    plain = learn(rec, PLANTED, fixed=fixed, calibrated=())
    floored = learn(rec, PLANTED, fixed=fixed)
    a = summarise(score_runs(rec, plain)).set_index("source").loc["all"]
    b = summarise(score_runs(rec, floored)).set_index("source").loc["all"]
    assert a["coverage_90"] < 0.89  # what the floor is for
    assert b["coverage_90"] >= 0.895 and b["coverage_50"] >= 0.495
    assert b["wis"] <= 1.02 * a["wis"]
    with pytest.raises(ValueError, match="calibrated must name band probabilities among"):
        learn(rec, PLANTED, fixed=fixed, calibrated=(0.95,))


def test_leaving_a_source_out_scores_it_with_a_model_it_did_not_shape(planted):
    runs, levels, models = leave_one_source_out(planted, fixed=("loss_residual_power", "allocation_residual_power",
                                                                 "loss_bias", "spread", "loss_offset"))
    assert sorted(models) == [f"s{s}" for s in range(6)]
    assert len(runs) == len(planted) and len(levels) == len(planted.levels)
    assert len({m.loss_scale for m in models.values()}) == 6  # each fold learned its own
    table = summarise(runs).set_index("source")
    assert 0.75 < table.loc["all", "coverage_90"] <= 1.0


def test_bands_are_ordered_and_allocation_scores_cover(planted):
    b = bands(planted, PLANTED)
    assert np.all(b[0.5][0] <= b["median"]) and np.all(b["median"] <= b[0.5][1])
    assert np.all(b[0.9][0] <= b[0.5][0]) and np.all(b[0.5][1] <= b[0.9][1])
    alloc = allocation_scores(planted, PLANTED)
    assert 0.7 < np.average(alloc["covered"], weights=alloc["weight"]) <= 1.0
    assert np.average(allocation_scores(planted, None)["covered"]) < 0.3


@pytest.mark.parametrize("seed", range(4))
def test_recalibrate_rescales_the_loss_scale_to_a_family(seed):
    """A family whose ladders miss by 3x (or 1/3) the model's scale gets a factor above 1.4 (below 0.6).

    Deterministic given the data (common random numbers, a bounded scalar search). Over 20 data seeds of 8
    ladders the factors were 1.58-3.86 (truth 3), 0.66-1.47 (truth 1) and 0.26-0.52 (truth 1/3): one Normal
    draw per ladder leaves the scale of 8 ladders uncertain by about a quarter, and the penalty shrinks towards 1.
    """
    from dataclasses import replace

    from bayescale.core.discrepancy import recalibrate

    factors = {}
    for mult in (3.0, 1.0, 1 / 3):
        rng = np.random.default_rng(seed)
        truth = replace(PLANTED, loss_scale=PLANTED.loss_scale * mult)
        rec = records([_split("family", k, rng, truth=truth) for k in range(8)])
        factors[mult] = recalibrate(rec, PLANTED).loss_scale / PLANTED.loss_scale
        assert recalibrate(rec, PLANTED, penalty=1e6).loss_scale == pytest.approx(PLANTED.loss_scale, rel=1e-3)
    assert factors[3.0] > 1.4 and factors[1 / 3] < 0.6
    assert factors[3.0] > factors[1.0] > factors[1 / 3]
