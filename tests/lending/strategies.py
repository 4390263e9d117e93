"""Hypothesis strategies shared by the credit tests."""

from hypothesis import strategies as st

from lending.credit.features import MAX_CV_BPS, CreditFeatures

features_st = st.builds(
    CreditFeatures,
    trailing_sale_income_fen=st.integers(0, 50_000_000),
    sale_income_cv_bps=st.integers(0, MAX_CV_BPS),
    trailing_fresh_leaf_kg=st.integers(0, 20_000),
    fresh_leaf_trend_bps=st.integers(-10_000, 20_000),
    premium_grade_share_bps=st.integers(0, 10_000),
    fresh_leaf_kg_per_mu_x100=st.integers(0, 200_000),
    plot_area_centi_mu=st.integers(1, 10_000),
    tenure_months=st.integers(0, 400),
    quality_failures_24m=st.integers(0, 20),
    recalled_lots_24m=st.integers(0, 10),
    loans_repaid_on_time=st.integers(0, 30),
    max_days_past_due_24m=st.integers(0, 365),
    current_exposure_fen=st.integers(0, 50_000_000),
)
